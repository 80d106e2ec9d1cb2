package origin

import (
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// putSandboxPart stages part n (as sent in the path) of the session key
// names from the request's body. The body is written to a temporary file
// outside the lock, so parts stream in side by side, and takes its place
// (replacing a part sent before) only if the session still takes parts
// once it is whole.
func (s *Server) putSandboxPart(r *http.Request, key sandboxKey, token, part string) (SandboxUpload, error) {
	st := s.sandbox
	st.mu.Lock()
	sess, err := s.lookupSandbox(key, token, st.clock())
	if err != nil {
		st.mu.Unlock()
		return SandboxUpload{}, err
	}
	n, perr := strconv.ParseUint(part, 10, 32)
	if perr != nil || n < 1 || n > uint64(sess.up.PartCount) {
		st.mu.Unlock()
		return SandboxUpload{}, sbErr(http.StatusBadRequest, SandboxInvalidPartCode, "part number %q is not from 1 to %d", part, sess.up.PartCount)
	}
	if err := takesParts(sess); err != nil {
		st.mu.Unlock()
		return SandboxUpload{}, err
	}
	want, limit := sess.partSize(uint32(n)), st.limits.MaxPartBytes
	if err := checkPartSize(r.ContentLength, want, limit); err != nil {
		st.mu.Unlock()
		return SandboxUpload{}, err
	}
	if sess.inFlight >= sess.up.MaxConcurrency {
		st.mu.Unlock()
		return SandboxUpload{}, sbErr(http.StatusTooManyRequests, SandboxTooManyPartsCode, "%d parts are being sent already (max_concurrency)", sess.inFlight)
	}
	sess.inFlight++
	stage := sess.stage
	st.mu.Unlock()

	tmp, size, werr := s.writePart(stage, r.Body, limit)

	st.mu.Lock()
	defer st.mu.Unlock()
	sess.inFlight--
	now := st.clock()
	s.refreshSandbox(sess, now)
	err = takesParts(sess)
	if err == nil {
		err = werr
	}
	if err == nil {
		err = checkPartSize(size, want, limit)
	}
	if err == nil {
		err = s.root.Rename(tmp, partFile(stage, uint32(n)))
	}
	if err != nil {
		if tmp != "" {
			s.root.Remove(tmp)
		}
		if !isOpen(sess.up.Status) {
			// The session ended while this part came in, and its staging
			// directory may have been removed around the part's file.
			s.root.Remove(stage)
		}
		return SandboxUpload{}, err
	}
	sess.accept(uint32(n), now)
	return sess.up, nil
}

// takesParts says why sess takes no parts, if it does not.
func takesParts(sess *sandboxSession) error {
	switch sess.up.Status {
	case SandboxCreated, SandboxUploading, SandboxStaged:
		return nil
	}
	return stateError(sess)
}

// checkPartSize refuses a part of size bytes (-1: not known yet) where
// want are due and at most limit are taken.
func checkPartSize(size int64, want, limit uint64) error {
	switch {
	case size < 0:
		return nil
	case uint64(size) > limit:
		return sbErr(http.StatusRequestEntityTooLarge, SandboxPartTooLargeCode, "the part is over limits.max_part_bytes %d", limit)
	case uint64(size) != want:
		return sbErr(http.StatusBadRequest, SandboxPartSizeCode, "the part has %d bytes, want %d", size, want)
	}
	return nil
}

// partSize is the size part n must have: part_size, or the rest for the
// last part.
func (sess *sandboxSession) partSize(n uint32) uint64 {
	if n < sess.up.PartCount {
		return sess.up.PartSize
	}
	return sess.up.ContentLength - uint64(sess.up.PartCount-1)*sess.up.PartSize
}

// accept counts part n in at now, once however often it was sent.
func (sess *sandboxSession) accept(n uint32, now time.Time) {
	if !sess.accepted[n-1] {
		sess.accepted[n-1] = true
		sess.up.AcceptedBytes += sess.partSize(n)
	}
	sess.up.UpdatedAt = now
	sess.up.NextPart = 0
	for i, in := range sess.accepted {
		if !in {
			sess.up.NextPart = uint32(i + 1)
			break
		}
	}
	if sess.up.NextPart == 0 {
		sess.up.Status = SandboxStaged
	} else {
		sess.up.Status = SandboxUploading
	}
}

// partFile is where part n of a session staged in stage is kept.
func partFile(stage string, n uint32) string {
	return filepath.Join(stage, strconv.FormatUint(uint64(n), 10)+".part")
}

// writePart writes body to a new temporary file in stage, reading at most
// limit+1 bytes: one more says the part is too large without reading it
// all. It returns the file and how many bytes it holds; with an error,
// the file ("" if none) is the caller's to remove.
func (s *Server) writePart(stage string, body io.Reader, limit uint64) (tmp string, size int64, err error) {
	tmp = filepath.Join(stage, "."+rand.Text()+".tmp")
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", 0, err
	}
	in := &trackedReader{r: io.LimitReader(body, int64(min(limit, 1<<62))+1)}
	size, err = io.Copy(f, in)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil && in.err != nil && errors.Is(err, in.err) {
		err = sbErr(http.StatusBadRequest, SandboxInterruptedCode, "the part broke off: %v", in.err)
	}
	return tmp, size, err
}
