package nginx

import "encoding/json"

// pcItoa formats an int for comparison with JSON numbers.
func pcItoa[T ~int | ~int64](n T) string {
	b, _ := json.Marshal(int64(n))
	return string(b)
}
