package cli

import (
	"encoding/json"
	"io"
	"math"
)

// jsonLines writes each update as one JSON object on a line:
// {"uploaded":N,"total":N,"status":"…","rate":bytes_per_second,"eta_seconds":N},
// rate and eta_seconds only when known.
type jsonLines struct{ enc *json.Encoder }

func newJSONLines(w io.Writer) *jsonLines { return &jsonLines{json.NewEncoder(w)} }

// jsonLine is one line of --json.
type jsonLine struct {
	Uploaded int64  `json:"uploaded"`
	Total    int64  `json:"total"`
	Status   Status `json:"status"`
	Rate     *int64 `json:"rate,omitempty"`
	ETA      *int64 `json:"eta_seconds,omitempty"`
}

func (j *jsonLines) show(f frame) {
	l := jsonLine{Uploaded: f.Uploaded, Total: f.Total, Status: f.Status}
	if f.hasRate {
		r := int64(math.Round(f.rate))
		l.Rate = &r
	}
	if f.hasETA {
		l.ETA = &f.eta
	}
	j.enc.Encode(l)
}

func (j *jsonLines) end(Update) {}
