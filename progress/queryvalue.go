package progress

import (
	"net/url"
	"strings"
)

// QueryValue returns the first value of the query parameter name in a raw
// query string, as url.Values.Get would, and whether it is there. Unlike
// url.ParseQuery it builds no map and, for parameters without escapes,
// allocates nothing: it runs for every request that passes the handler.
func QueryValue(rawQuery, name string) (string, bool) {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if pair == "" || strings.Contains(pair, ";") {
			// url.ParseQuery drops pairs with a semicolon too.
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			uk, err := url.QueryUnescape(k)
			if err != nil || uk != name {
				continue
			}
		} else if k != name {
			continue
		}
		if !strings.ContainsAny(v, "%+") {
			return v, true
		}
		uv, err := url.QueryUnescape(v)
		if err != nil {
			// url.ParseQuery drops a pair it cannot unescape.
			continue
		}
		return uv, true
	}
	return "", false
}
