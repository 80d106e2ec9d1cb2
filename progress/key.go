package progress

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxKeyLen is the longest key the tracker accepts, in bytes.
const MaxKeyLen = 4096

// CheckKey says what is wrong with a key, or returns nil. A key must be
// non-empty valid UTF-8 of at most MaxKeyLen bytes with no control
// characters, so that it can be logged and stored safely.
func CheckKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("is empty")
	case len(key) > MaxKeyLen:
		return fmt.Errorf("is longer than %d bytes", MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("is not valid UTF-8")
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return fmt.Errorf("contains a control character")
		}
	}
	return nil
}
