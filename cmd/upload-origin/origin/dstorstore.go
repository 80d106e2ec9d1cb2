package origin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// dstorStore holds the dStor uploads in memory; their chunks are kept on
// disk under DstorDir until the upload is saved.
type dstorStore struct {
	prefix    string
	delay     time.Duration
	failStage string
	ttl       time.Duration
	now       func() time.Time

	mu      sync.Mutex
	uploads map[string]*dstorUpload // by token
	closed  bool
	// running counts the stage timers scheduled or firing, so close can
	// wait for them.
	running sync.WaitGroup
}

// dstorUpload is one upload. Its fields are guarded by the store's mutex,
// but for what saveDstor reads while the upload is SAVING_DATA: nothing
// changes them then.
type dstorUpload struct {
	token, owner string
	// folder is folder_path cleaned; rel is the same relative to Dir.
	folder, rel string
	chunks      int
	// accepted counts the chunks answered 200, inFlight those being
	// received; seq numbers the chunk directories.
	accepted, inFlight, seq int
	status                  string
	failStage               string
	// tree is the files of the accepted chunks, where they are kept.
	tree    dstorTree
	timer   *time.Timer
	result  *DstorResult
	errMsg  string
	errAt   string
	updated time.Time
}

// dstorKept is a received file: where it is kept (relative to Dir), its
// size and SHA-256.
type dstorKept struct {
	at   string
	size int64
	sum  [32]byte
}

// dstorTree is a set of files by their path in the folder, with the
// directories their paths make.
type dstorTree struct {
	files map[string]dstorKept
	dirs  map[string]bool
}

func newDstorTree() dstorTree {
	return dstorTree{files: map[string]dstorKept{}, dirs: map[string]bool{}}
}

// conflicts reports whether p cannot join the tree: it is one of its
// directories, or one of its own directories is a file of the tree.
func (t dstorTree) conflicts(p string) bool {
	if t.dirs[p] {
		return true
	}
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if _, ok := t.files[d]; ok {
			return true
		}
	}
	return false
}

// add puts f at p, replacing a file there.
func (t dstorTree) add(p string, f dstorKept) {
	t.files[p] = f
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		t.dirs[d] = true
	}
}

func newDstorStore(cfg Config) (*dstorStore, error) {
	st := &dstorStore{
		prefix:    strings.TrimSuffix(cfg.DstorPrefix, "/"),
		delay:     cfg.DstorStageDelay,
		failStage: cfg.DstorFailStage,
		ttl:       cfg.DstorTTL,
		now:       cfg.Now,
		uploads:   map[string]*dstorUpload{},
	}
	if cfg.DstorPrefix == "" {
		st.prefix = DefaultDstorPrefix
	} else if !strings.HasPrefix(st.prefix, "/") {
		return nil, fmt.Errorf("origin: DstorPrefix %q must start with / and not be /", cfg.DstorPrefix)
	}
	if err := checkFailStage(st.failStage); err != nil {
		return nil, fmt.Errorf("origin: DstorFailStage: %w", err)
	}
	if st.delay <= 0 {
		st.delay = defaultDstorStageDelay
	}
	if st.ttl <= 0 {
		st.ttl = defaultDstorTTL
	}
	if st.now == nil {
		st.now = time.Now
	}
	return st, nil
}

// checkFailStage refuses a fail stage that is no stage ("" is none).
func checkFailStage(stage string) error {
	switch stage {
	case "", DstorAddingToIPFS, DstorSavingData:
		return nil
	}
	return fmt.Errorf("%q is not %s or %s", stage, DstorAddingToIPFS, DstorSavingData)
}

// reservedDir reports whether rel (relative to Dir) is in one of the
// origin's own directories.
func reservedDir(rel string) bool {
	first, _, _ := strings.Cut(rel, "/")
	return first == DstorDir || first == SandboxDir || first == TusDir
}

// tempDir is where the chunks of the upload token names are kept,
// relative to Dir.
func tempDir(token string) string { return filepath.Join(DstorDir, token) }

// createDstorUpload opens an upload for owner as the token request asks
// and returns its token.
func (s *Server) createDstorUpload(r *http.Request, owner string) (string, error) {
	failStage := strings.TrimSpace(r.Header.Get(DstorFailStageHeader))
	if err := checkFailStage(failStage); err != nil {
		return "", dsErr(http.StatusBadRequest, "%s: %v", DstorFailStageHeader, err)
	}
	req, err := readDstorTokenRequest(r)
	if err != nil {
		return "", err
	}
	folder, rel, err := resolve(req.folder, true)
	if err != nil {
		return "", dsErr(http.StatusBadRequest, "folder_path: %v", strings.Replace(err.Error(), " query parameter", "", 1))
	}
	if reservedDir(rel) {
		return "", dsErr(http.StatusBadRequest, "folder_path: %s is reserved", folder)
	}
	st := s.dstor
	if failStage == "" {
		failStage = st.failStage
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return "", dsErr(http.StatusServiceUnavailable, "the origin is shutting down")
	}
	now := st.now()
	s.sweepDstor(now)
	u := &dstorUpload{
		token:     rand.Text(),
		owner:     owner,
		folder:    folder,
		rel:       rel,
		chunks:    req.chunks,
		status:    DstorPending,
		failStage: failStage,
		tree:      newDstorTree(),
		updated:   now,
	}
	st.uploads[u.token] = u
	return u.token, nil
}

// lookup is the upload token names, if it is owner's.
func (st *dstorStore) lookup(token, owner string) (*dstorUpload, error) {
	u := st.uploads[token]
	if u == nil || subtle.ConstantTimeCompare([]byte(u.owner), []byte(owner)) != 1 {
		return nil, errDstorNotFound
	}
	return u, nil
}

// dstorStatus is the status of the upload token names, for owner.
func (s *Server) dstorStatus(token, owner string) (DstorStatus, error) {
	st := s.dstor
	st.mu.Lock()
	defer st.mu.Unlock()
	u, err := st.lookup(token, owner)
	if err != nil {
		return DstorStatus{}, err
	}
	ans := DstorStatus{Status: u.status}
	switch u.status {
	case DstorDone:
		ans.Data = u.result
	case DstorError:
		ans.ErrorExplanation, ans.ErrorAtStage = u.errMsg, u.errAt
	}
	return ans, nil
}

// sweepDstor forgets the uploads that ended, or wait for chunks with none
// under way, and did not change for a TTL.
func (s *Server) sweepDstor(now time.Time) {
	st := s.dstor
	for token, u := range st.uploads {
		idle := u.status == DstorDone || u.status == DstorError || (u.status == DstorPending && u.inFlight == 0)
		if idle && now.Sub(u.updated) > st.ttl {
			s.removeTemp(u)
			delete(st.uploads, token)
		}
	}
}

// removeTemp removes the upload's temp folder.
func (s *Server) removeTemp(u *dstorUpload) {
	if err := s.root.RemoveAll(tempDir(u.token)); err != nil {
		s.logf("origin: dstor upload %s: removing its temp folder: %v", u.token, err)
	}
}

// scheduleStage ends u's current stage one stage delay from now, unless
// the origin is closing.
func (s *Server) scheduleStage(u *dstorUpload) {
	st := s.dstor
	if st.closed {
		return
	}
	st.running.Add(1)
	u.timer = time.AfterFunc(st.delay, func() {
		defer st.running.Done()
		s.endStage(u)
	})
}

// endStage ends u's current stage: in ERROR if asked so, else on to the
// next, SAVING_DATA ending with the files saved at folder_path.
func (s *Server) endStage(u *dstorUpload) {
	st := s.dstor
	st.mu.Lock()
	u.timer = nil
	if st.closed {
		st.mu.Unlock()
		return
	}
	stage := u.status
	switch {
	case stage == u.failStage:
		s.failDstor(u, stage, "forced failure at "+stage)
		st.mu.Unlock()
		return
	case stage == DstorAddingToIPFS:
		u.status = DstorSavingData
		u.updated = st.now()
		s.scheduleStage(u)
		st.mu.Unlock()
		return
	}
	st.mu.Unlock()

	result, err := s.saveDstor(u)

	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		s.failDstor(u, DstorSavingData, err.Error())
		return
	}
	u.status, u.result, u.updated = DstorDone, result, st.now()
	s.removeTemp(u)
}

// failDstor ends u in ERROR at stage, its files left unsaved.
func (s *Server) failDstor(u *dstorUpload, stage, msg string) {
	u.status, u.errAt, u.errMsg, u.updated = DstorError, stage, msg, s.dstor.now()
	s.removeTemp(u)
}

// saveDstor moves u's files from the temp folder to folder_path,
// replacing files of the same path, and returns what it stored. It first
// looks for anything in the way (a file where a directory goes, a
// directory where a file goes), so that an upload that cannot be saved
// moves no file.
func (s *Server) saveDstor(u *dstorUpload) (*DstorResult, error) {
	paths := slices.Sorted(func(yield func(string) bool) {
		for p := range u.tree.files {
			if !yield(p) {
				return
			}
		}
	})
	target := func(p string) string { return filepath.FromSlash(path.Join(u.rel, p)) }
	isDir := map[string]bool{}
	for _, p := range paths {
		if info, err := s.root.Lstat(target(p)); err == nil && info.IsDir() {
			return nil, fmt.Errorf("%s is a directory", path.Join(u.folder, p))
		}
		for d := path.Dir(path.Join(u.rel, p)); d != "." && !isDir[d]; d = path.Dir(d) {
			info, err := s.root.Lstat(filepath.FromSlash(d))
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				continue // the culprit is further up
			}
			if err != nil || !info.IsDir() {
				return nil, fmt.Errorf("/%s is not a directory", d)
			}
			isDir[d] = true
		}
	}
	res := &DstorResult{FolderPath: u.folder, Files: make([]DstorFile, 0, len(paths))}
	for _, p := range paths {
		f := u.tree.files[p]
		dst := target(p)
		if err := s.root.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, fmt.Errorf("saving %s: %v", path.Join(u.folder, p), fsError(err))
		}
		if err := s.root.Rename(f.at, dst); err != nil {
			return nil, fmt.Errorf("saving %s: %v", path.Join(u.folder, p), fsError(err))
		}
		res.Files = append(res.Files, DstorFile{Path: p, Size: f.size, CID: rawCID(f.sum)})
	}
	return res, nil
}

// rawCID is the CIDv1 of bytes whose SHA-256 is sum as one raw IPFS
// block, in base32 ("bafkrei…").
func rawCID(sum [32]byte) string {
	// Version 1, codec raw (0x55), multihash sha2-256 (0x12) of 32 bytes.
	b := append([]byte{0x01, 0x55, 0x12, 0x20}, sum[:]...)
	return "b" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// close stops the stage timers not fired and waits for those firing.
// Their uploads stay where they were: the origin is going away.
func (st *dstorStore) close() {
	st.mu.Lock()
	st.closed = true
	for _, u := range st.uploads {
		if u.timer != nil && u.timer.Stop() {
			st.running.Done()
		}
	}
	st.mu.Unlock()
	st.running.Wait()
}
