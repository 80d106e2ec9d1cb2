package origin

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Bounds of a file's path in the folder, as file systems have them.
const (
	maxDstorName = 255
	maxDstorPath = 4096
)

// putDstorChunk receives a chunk of the upload token names for owner.
// Its files are written outside the lock, to a directory of their own in
// the temp folder, so chunks stream in side by side; they join the upload
// only once the whole chunk is in and fits, else the directory goes.
func (s *Server) putDstorChunk(r *http.Request, token, owner string) error {
	st := s.dstor
	st.mu.Lock()
	u, err := st.lookup(token, owner)
	if err != nil {
		st.mu.Unlock()
		return err
	}
	switch {
	case u.status != DstorPending:
		st.mu.Unlock()
		return dsErr(http.StatusConflict, "the upload has all its %d chunks", u.chunks)
	case u.accepted+u.inFlight >= u.chunks:
		st.mu.Unlock()
		return dsErr(http.StatusConflict, "chunks_number is %d: %d chunks are in and %d being received", u.chunks, u.accepted, u.inFlight)
	case !isMultipart(r):
		// Checked after the upload, so that a stranger learns nothing.
		st.mu.Unlock()
		return dsErr(http.StatusBadRequest, "a chunk must be multipart/form-data")
	}
	u.inFlight++
	u.seq++
	dir := filepath.Join(tempDir(token), "chunk-"+strconv.Itoa(u.seq))
	folderRel := u.rel
	st.mu.Unlock()

	files, err := s.receiveDstorChunk(r, dir, folderRel)

	st.mu.Lock()
	defer st.mu.Unlock()
	u.inFlight--
	if err == nil {
		for p := range files.files {
			if u.tree.conflicts(p) {
				err = dsErr(http.StatusConflict, "%s: a file and a directory of the upload have this path", p)
				break
			}
		}
	}
	if err != nil {
		if rerr := s.root.RemoveAll(dir); rerr != nil {
			s.logf("origin: dstor upload %s: removing a refused chunk: %v", token, rerr)
		}
		return err
	}
	for p, f := range files.files {
		u.tree.add(p, f)
	}
	u.accepted++
	u.updated = st.now()
	if u.accepted == u.chunks {
		u.status = DstorAddingToIPFS
		s.scheduleStage(u)
	}
	return nil
}

// receiveDstorChunk writes the files of a chunk's multipart body to dir
// (relative to Dir), each at its path in the folder, and returns them.
// Parts are streamed one by one, nothing is buffered in memory.
func (s *Server) receiveDstorChunk(r *http.Request, dir, folderRel string) (dstorTree, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return dstorTree{}, dsErr(http.StatusBadRequest, "malformed multipart request: %v", err)
	}
	files := newDstorTree()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return dstorTree{}, dsErr(http.StatusBadRequest, "malformed multipart body: %v", err)
		}
		name := partFileName(part)
		if name == "" {
			continue // a plain form field; NextPart skips its content
		}
		p, err := dstorPath(name)
		if err != nil {
			return dstorTree{}, dsErr(http.StatusBadRequest, "file %q: %v", name, err)
		}
		if reservedDir(path.Join(folderRel, p)) {
			return dstorTree{}, dsErr(http.StatusBadRequest, "file %q: its place is reserved", name)
		}
		if files.conflicts(p) {
			return dstorTree{}, dsErr(http.StatusConflict, "%s: a file and a directory of the chunk have this path", p)
		}
		at := filepath.Join(dir, filepath.FromSlash(p))
		f, err := s.writeDstorFile(at, part)
		part.Close()
		if err != nil {
			return dstorTree{}, err
		}
		files.add(p, f)
	}
	if len(files.files) == 0 {
		return dstorTree{}, dsErr(http.StatusBadRequest, "no files in the chunk")
	}
	return files, nil
}

// partFileName is the file name of a part as sent. Part.FileName keeps
// only its last element, and here the whole path is the point.
func partFileName(part *multipart.Part) string {
	_, params, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	return params["filename"]
}

// dstorPath is the path in the folder a file name gives, relative and
// clean ("2024/img_1.jpg"), or why it gives none.
func dstorPath(name string) (string, error) {
	_, rel, err := resolve("/"+strings.ReplaceAll(name, `\`, "/"), false)
	if err != nil {
		return "", errors.New(strings.Replace(err.Error(), "path must name a file, not /", "names no file", 1))
	}
	if len(rel) > maxDstorPath {
		return "", fmt.Errorf("the path is over %d bytes", maxDstorPath)
	}
	for seg := range strings.SplitSeq(rel, "/") {
		if len(seg) > maxDstorName {
			return "", fmt.Errorf("an element of the path is over %d bytes", maxDstorName)
		}
	}
	return rel, nil
}

// writeDstorFile writes src to at (relative to Dir), hashing it.
func (s *Server) writeDstorFile(at string, src io.Reader) (dstorKept, error) {
	if err := s.root.MkdirAll(filepath.Dir(at), 0o755); err != nil {
		return dstorKept{}, err
	}
	f, err := s.root.OpenFile(at, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return dstorKept{}, err
	}
	h := sha256.New()
	in := &trackedReader{r: src}
	n, err := io.Copy(io.MultiWriter(f, h), in)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if in.err != nil {
			return dstorKept{}, dsErr(http.StatusBadRequest, "upload interrupted: %v", in.err)
		}
		return dstorKept{}, err
	}
	kept := dstorKept{at: at, size: n}
	h.Sum(kept.sum[:0])
	return kept, nil
}
