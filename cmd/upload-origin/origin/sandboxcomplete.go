package origin

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// completeSandboxUpload completes the session key names, as mode ("",
// "async" or "sync") asks: asynchronously it answers 202 completing and
// finishes after the completion delay; synchronously it finishes first
// and answers 200 completed, or the error that failed the session.
// Completing a session again answers how it stands.
func (s *Server) completeSandboxUpload(key sandboxKey, token, mode string) (int, SandboxUpload, error) {
	st := s.sandbox
	sync := st.sync
	switch mode {
	case "":
	case "async", "sync":
		sync = mode == "sync"
	default:
		return 0, SandboxUpload{}, sbErr(http.StatusBadRequest, SandboxInvalidRequestCode, `mode must be "async" or "sync"`)
	}
	st.mu.Lock()
	now := st.clock()
	sess, err := s.lookupSandbox(key, token, now)
	if err != nil {
		st.mu.Unlock()
		return 0, SandboxUpload{}, err
	}
	switch sess.up.Status {
	case SandboxCompleted:
		defer st.mu.Unlock()
		return http.StatusOK, sess.up, nil
	case SandboxCompleting:
		defer st.mu.Unlock()
		return http.StatusAccepted, sess.up, nil
	case SandboxCreated, SandboxUploading:
		defer st.mu.Unlock()
		return 0, SandboxUpload{}, sbErr(http.StatusConflict, SandboxPartsMissingCode, "part %d of %d is missing", sess.up.NextPart, sess.up.PartCount)
	case SandboxStaged:
	default:
		defer st.mu.Unlock()
		return 0, SandboxUpload{}, stateError(sess)
	}
	if st.closed {
		defer st.mu.Unlock()
		return 0, SandboxUpload{}, sbErr(http.StatusServiceUnavailable, SandboxInternalCode, "the origin is shutting down")
	}
	sess.up.Status = SandboxCompleting
	sess.up.UpdatedAt = now
	if !sync {
		defer st.mu.Unlock()
		st.running.Add(1)
		sess.timer = time.AfterFunc(st.delay, func() {
			defer st.running.Done()
			s.finishSandbox(sess)
		})
		return http.StatusAccepted, sess.up, nil
	}
	st.mu.Unlock()

	s.finishSandbox(sess)
	st.mu.Lock()
	defer st.mu.Unlock()
	if sess.up.Status == SandboxFailed {
		return 0, SandboxUpload{}, sess.err
	}
	return http.StatusOK, sess.up, nil
}

// finishSandbox assembles a completing session at its target and ends it
// completed, or failed. Nothing else moves a completing session, so its
// staged parts stay as they are meanwhile.
func (s *Server) finishSandbox(sess *sandboxSession) {
	st := s.sandbox
	st.mu.Lock()
	if sess.up.Status != SandboxCompleting {
		st.mu.Unlock()
		return
	}
	up, stage, rel := sess.up, sess.stage, sess.rel
	st.mu.Unlock()

	sum, err := s.assembleSandbox(up, stage, rel)

	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.clock()
	if err != nil {
		var se *sandboxErr
		if !errors.As(err, &se) {
			s.logf("origin: sandbox %s: completing: %v", up.UploadID, err)
			se = sbErr(http.StatusInternalServerError, SandboxInternalCode, "the upload could not be assembled")
		}
		sess.err = se
		s.endSandbox(sess, SandboxFailed, now)
		return
	}
	sess.up.WholeChecksumSHA256 = sum
	s.endSandbox(sess, SandboxCompleted, now)
}

// assembleSandbox puts the parts staged in stage together at rel, as up's
// kind and conflict say, and returns the hex SHA-256 of all their bytes.
func (s *Server) assembleSandbox(up SandboxUpload, stage, rel string) (string, error) {
	src := &partsReader{root: s.root, stage: stage, next: 1, count: up.PartCount}
	defer src.Close()
	if up.Kind == SandboxKindFile {
		mode := replace
		if up.Conflict == SandboxConflictError {
			mode = refuse
		}
		f, err := s.store(up.TargetPath, rel, src, mode)
		return f.SHA256, targetError(err)
	}
	h := sha256.New()
	tee := io.TeeReader(src, h)
	tree := filepath.Join(stage, "tree")
	if err := s.extractTar(tee, tree); err != nil {
		return "", err
	}
	// The tar reader stops at the end-of-archive marker: the checksum is
	// of every byte sent.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return "", err
	}
	if err := s.placeTree(tree, filepath.FromSlash(rel), up.Conflict); err != nil {
		return "", targetError(err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// targetError is err, or for a conflict at the target the sandbox's
// answer to it.
func targetError(err error) error {
	var he *httpError
	if errors.As(err, &he) && he.status == http.StatusConflict {
		return sbErr(http.StatusConflict, SandboxTargetConflictCode, "%s", he.msg)
	}
	return err
}

// extractTar unpacks the tar archive src into the directory tree (relative
// to Dir): its directories and regular files. Links and devices are
// skipped, as a directory upload needs none and a link could point
// anywhere; names are kept inside tree.
func (s *Server) extractTar(src io.Reader, tree string) error {
	if err := s.root.MkdirAll(tree, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(src)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return sbErr(http.StatusUnprocessableEntity, SandboxInvalidArchiveCode, "the archive is not a valid tar: %v", err)
		}
		_, name, err := resolve("/"+strings.TrimPrefix(hdr.Name, "/"), true)
		if err != nil {
			return sbErr(http.StatusUnprocessableEntity, SandboxInvalidArchiveCode, "archive entry %q: %v", hdr.Name, err)
		}
		dst := filepath.Join(tree, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = s.root.MkdirAll(dst, 0o755)
		case tar.TypeReg:
			err = s.extractFile(dst, tr)
		}
		if err != nil {
			return targetError(fsError(err))
		}
	}
}

// extractFile writes the current entry of tr to dst.
func (s *Server) extractFile(dst string, tr *tar.Reader) error {
	if err := s.root.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := s.root.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, tr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
		return sbErr(http.StatusUnprocessableEntity, SandboxInvalidArchiveCode, "the archive is not a valid tar: %v", err)
	}
	return err
}

// placeTree puts the unpacked directory tree at dst as conflict says:
// "error" only where nothing is, "replace" instead of what is there,
// "merge" into the directory there, its files replacing those of the same
// name.
func (s *Server) placeTree(tree, dst, conflict string) error {
	info, err := s.root.Lstat(dst)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fsError(err)
	}
	switch {
	case exists && conflict == SandboxConflictError:
		return errExists
	case exists && conflict == SandboxConflictReplace:
		if err := s.root.RemoveAll(dst); err != nil {
			return err
		}
	case exists && !info.IsDir():
		return &httpError{status: http.StatusConflict, msg: "the target is a file, not a directory"}
	case exists:
		return s.mergeTree(tree, dst)
	}
	if err := s.root.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fsError(err)
	}
	return fsError(s.root.Rename(tree, dst))
}

// mergeTree moves the files of tree into the existing directory dst.
func (s *Server) mergeTree(tree, dst string) error {
	return fs.WalkDir(s.root.FS(), filepath.ToSlash(tree), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		to := filepath.Join(dst, filepath.FromSlash(strings.TrimPrefix(p, filepath.ToSlash(tree))))
		if d.IsDir() {
			return fsError(s.root.MkdirAll(to, 0o755))
		}
		return fsError(s.root.Rename(filepath.FromSlash(p), to))
	})
}

// partsReader reads the parts staged in stage one after the other, from
// next to count, with one file open at a time.
type partsReader struct {
	root        *os.Root
	stage       string
	next, count uint32
	cur         *os.File
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if p.cur == nil {
			if p.next > p.count {
				return 0, io.EOF
			}
			f, err := p.root.Open(partFile(p.stage, p.next))
			if err != nil {
				return 0, err
			}
			p.cur, p.next = f, p.next+1
		}
		n, err := p.cur.Read(b)
		if err == io.EOF {
			p.cur.Close()
			p.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// Close closes the part being read, if any.
func (p *partsReader) Close() {
	if p.cur != nil {
		p.cur.Close()
		p.cur = nil
	}
}
