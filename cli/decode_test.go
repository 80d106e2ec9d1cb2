package cli

import (
	"errors"
	"net/url"
	"testing"
)

// testTarget is a target of a server that is never asked.
func testTarget() target {
	u, _ := url.Parse("http://127.0.0.1:1")
	return target{server: u, key: "k", apiKey: "c"}
}

// Every protocol's replies, as its docs page shows them, normalise into
// counts and a status; refusals of what the user gave are usage errors,
// answers in another shape are failures.
func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		protocol string
		code     int
		body     string
		want     Update
		exit     int // an *answerError's, when not 0
	}{
		{"shard", 200, `{"total_size":67108864,"uploaded":31457280,"status":"uploading","error":""}`, Update{31457280, 67108864, StatusUploading, ""}, 0},
		{"shard", 200, `{"total_size":67108864,"uploaded":67108864,"status":"completed","error":""}`, Update{67108864, 67108864, StatusCompleted, ""}, 0},
		{"shard", 200, `{"total_size":1048576,"uploaded":1048576,"status":"failed","error":"origin responded 409 Conflict"}`, Update{1048576, 1048576, StatusFailed, "origin responded 409 Conflict"}, 0},
		{"shard", 200, `{"total_size":0,"uploaded":0,"status":"not_exist","error":""}`, Update{0, -1, StatusWaiting, ""}, 0},
		{"shard", 200, `{"total_size":-1,"uploaded":5,"status":"uploading","error":""}`, Update{5, -1, StatusUploading, ""}, 0},
		{"shard", 401, `{"error":"missing x-user-api-key header"}`, Update{}, exitUsage},
		{"shard", 404, `<html>not found</html>`, Update{}, exitFailed},

		{"pcloud", 200, `{"result":0,"total":3146412,"uploaded":1573110,"currentfile":"two.bin","currentfileuploaded":1000,"filenumber":2,"finished":false,"files":[]}`, Update{1573110, 3146412, StatusUploading, ""}, 0},
		{"pcloud", 200, `{"result":0,"total":3146412,"uploaded":3146412,"filenumber":3,"finished":true,"files":[]}`, Update{3146412, 3146412, StatusCompleted, ""}, 0},
		{"pcloud", 200, `{"result":0,"error":"origin responded 500 Internal Server Error","total":1048576,"uploaded":1048576,"filenumber":0,"finished":true,"files":[]}`, Update{1048576, 1048576, StatusFailed, "origin responded 500 Internal Server Error"}, 0},
		{"pcloud", 200, `{"result":1900,"error":"Upload not found."}`, Update{0, -1, StatusWaiting, ""}, 0},
		{"pcloud", 200, `{"result":1000,"error":"missing auth or access_token"}`, Update{}, exitUsage},
		{"pcloud", 200, `{"result":1900,"error":"progresshash: contains a control character"}`, Update{}, exitUsage},
		{"pcloud", 200, `{"ok":true}`, Update{}, exitFailed},

		{"nginx", 200, `{"state":"starting"}`, Update{0, -1, StatusWaiting, ""}, 0},
		{"nginx", 200, `{"state":"uploading","received":1048576,"size":2097152}`, Update{1048576, 2097152, StatusUploading, ""}, 0},
		{"nginx", 200, `{"state":"done"}`, Update{-1, -1, StatusCompleted, ""}, 0},
		{"nginx", 200, `{"state":"error","status":500}`, Update{-1, -1, StatusFailed, "the upload ended with HTTP status 500"}, 0},
		{"nginx", 400, `{"state":"error","status":400,"error":"missing X-Progress-ID"}`, Update{}, exitUsage},

		{"tus", 200, `{"upload":"/files/6","length":50000000,"offset":0,"received":0,"status":"created","error":""}`, Update{0, 50000000, StatusUploading, ""}, 0},
		{"tus", 200, `{"upload":"/files/6","length":50000000,"offset":0,"received":21037056,"status":"uploading","error":""}`, Update{21037056, 50000000, StatusUploading, ""}, 0},
		{"tus", 200, `{"upload":"/files/d","length":1000000,"offset":400000,"received":400000,"status":"paused","error":""}`, Update{400000, 1000000, StatusPaused, ""}, 0},
		{"tus", 200, `{"upload":"/files/6","length":50,"offset":50,"received":50,"status":"completed","error":""}`, Update{50, 50, StatusCompleted, ""}, 0},
		{"tus", 200, `{"upload":"/files/1","length":-1,"offset":0,"received":0,"status":"terminated","error":""}`, Update{0, -1, StatusFailed, "the upload was terminated"}, 0},
		{"tus", 200, `{"upload":"/files/5","length":52,"offset":20,"received":20,"status":"failed","error":"the tus server answered 404 Not Found: the upload is gone"}`, Update{20, 52, StatusFailed, "the tus server answered 404 Not Found: the upload is gone"}, 0},
		{"tus", 404, `{"upload":"/files/nope","status":"not_exist"}`, Update{0, -1, StatusWaiting, ""}, 0},
		{"tus", 400, `{"error":"missing query parameter upload (the upload URL or its path)"}`, Update{}, exitUsage},

		{"sandbox", 200, `{"upload_id":"up_3","content_length":200,"accepted_bytes":0,"status":"created","received_bytes":0,"parts_in_flight":[]}`, Update{0, 200, StatusUploading, ""}, 0},
		{"sandbox", 200, `{"upload_id":"up_3","content_length":200,"accepted_bytes":0,"status":"uploading","received_bytes":21,"parts_in_flight":[{"part_number":1,"received":21,"size":67}]}`, Update{21, 200, StatusUploading, ""}, 0},
		{"sandbox", 200, `{"upload_id":"up_3","content_length":200,"accepted_bytes":67,"status":"uploading"}`, Update{67, 200, StatusUploading, ""}, 0},
		{"sandbox", 200, `{"upload_id":"up_3","content_length":200,"accepted_bytes":200,"status":"staged","received_bytes":200}`, Update{200, 200, StatusPaused, ""}, 0},
		{"sandbox", 200, `{"upload_id":"up_3","content_length":200,"accepted_bytes":200,"status":"completing","received_bytes":200}`, Update{200, 200, StatusProcessing, ""}, 0},
		{"sandbox", 200, `{"upload_id":"up_3","content_length":200,"accepted_bytes":200,"status":"completed","received_bytes":200}`, Update{200, 200, StatusCompleted, ""}, 0},
		{"sandbox", 200, `{"upload_id":"up_3","content_length":200,"accepted_bytes":0,"status":"aborted","received_bytes":0}`, Update{0, 200, StatusFailed, "the upload session was aborted"}, 0},
		{"sandbox", 404, `{"error":{"code":"not_found","message":"upload session not found"}}`, Update{0, -1, StatusWaiting, ""}, 0},
		{"sandbox", 401, `{"error":{"code":"unauthorized","message":"missing Authorization bearer token"}}`, Update{}, exitUsage},

		{"dstor", 200, `{"status":"UPLOADING","chunksNumber":3,"chunksUploaded":1,"chunksInFlight":0,"bytesUploaded":603677,"filesUploaded":2,"folderPath":"/photos"}`, Update{603677, -1, StatusUploading, ""}, 0},
		{"dstor", 200, `{"status":"ERROR","errorExplanation":"forced failure","errorAtStage":"UPLOADING","chunksNumber":3,"chunksUploaded":2,"bytesUploaded":1211798}`, Update{1211798, -1, StatusUploading, "forced failure"}, 0},
		{"dstor", 200, `{"status":"SAVING_DATA","chunksNumber":3,"chunksUploaded":3,"bytesUploaded":1824363}`, Update{1824363, -1, StatusProcessing, ""}, 0},
		{"dstor", 200, `{"status":"DONE","data":{"files":[]},"chunksNumber":3,"chunksUploaded":3,"bytesUploaded":1824363}`, Update{1824363, -1, StatusCompleted, ""}, 0},
		{"dstor", 200, `{"status":"ERROR","errorExplanation":"forced failure at SAVING_DATA","errorAtStage":"SAVING_DATA","chunksNumber":2,"bytesUploaded":300551}`, Update{300551, -1, StatusFailed, "forced failure at SAVING_DATA"}, 0},
		{"dstor", 404, `{"status":"ERROR","errorExplanation":"upload not found","errorAtStage":"UPLOADING"}`, Update{0, -1, StatusWaiting, ""}, 0},
		{"dstor", 401, `{"status":"ERROR","errorExplanation":"missing Authorization header","errorAtStage":"UPLOADING"}`, Update{}, exitUsage},
		{"dstor", 200, `{"status":"PENDING"}`, Update{}, exitFailed},
	} {
		got, err := newAdapters[tc.protocol](testTarget()).decode(tc.code, []byte(tc.body))
		var ae *answerError
		switch {
		case tc.exit != 0 && (!errors.As(err, &ae) || ae.exit != tc.exit):
			t.Errorf("%s %d %s: %v, want an error of exit %d", tc.protocol, tc.code, tc.body, err, tc.exit)
		case tc.exit == 0 && (err != nil || got != tc.want):
			t.Errorf("%s %d %s: %+v %v, want %+v", tc.protocol, tc.code, tc.body, got, err, tc.want)
		}
	}
}

// Whatever a server answers, decoding says what it is or that it is not
// a reply: it never panics, and a reply's status is one of the CLI's.
func FuzzDecode(f *testing.F) {
	f.Add("shard", 200, []byte(`{"total_size":10,"uploaded":5,"status":"uploading","error":""}`))
	f.Add("pcloud", 200, []byte(`{"result":0,"total":3,"uploaded":1,"finished":true,"error":"x"}`))
	f.Add("nginx", 200, []byte(`{"state":"uploading","received":1,"size":2}`))
	f.Add("tus", 404, []byte(`{"upload":"/files/nope","status":"not_exist"}`))
	f.Add("sandbox", 200, []byte(`{"upload_id":"u","content_length":2,"received_bytes":1,"status":"completing"}`))
	f.Add("dstor", 200, []byte(`{"status":"DONE","chunksNumber":1,"bytesUploaded":4}`))
	statuses := map[Status]bool{StatusWaiting: true, StatusUploading: true, StatusPaused: true, StatusProcessing: true, StatusCompleted: true, StatusFailed: true}
	f.Fuzz(func(t *testing.T, protocol string, code int, body []byte) {
		newAdapter, ok := newAdapters[protocol]
		if !ok {
			return
		}
		u, err := newAdapter(testTarget()).decode(code, body)
		var ae *answerError
		if err != nil && !errors.As(err, &ae) {
			t.Fatalf("an error that is no *answerError: %v", err)
		}
		if err == nil && !statuses[u.Status] {
			t.Fatalf("status %q", u.Status)
		}
	})
}
