package origin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// sandboxStore holds the sandbox's upload sessions in memory; their parts
// are staged on disk under SandboxDir.
type sandboxStore struct {
	prefix string
	limits SandboxLimits
	ttl    time.Duration
	delay  time.Duration
	sync   bool // completions are synchronous unless asked otherwise
	now    func() time.Time
	logf   func(format string, args ...any)

	mu       sync.Mutex
	sessions map[sandboxKey]*sandboxSession
	closed   bool
	// running counts the asynchronous completions scheduled or under
	// way, so close can wait for them.
	running sync.WaitGroup
}

// sandboxKey names a session: its sandbox and its upload id.
type sandboxKey struct{ sandbox, upload string }

// sandboxSession is one upload session. Its fields are guarded by the
// store's mutex.
type sandboxSession struct {
	key   sandboxKey
	token string
	// rel is target_path relative to Dir; stage is the session's staging
	// directory, relative to Dir too.
	rel, stage string
	// up is the session as answered, kept current.
	up SandboxUpload
	// accepted says which parts are in.
	accepted []bool
	inFlight uint32
	// timer is the asynchronous completion, once scheduled.
	timer *time.Timer
	// err is why the completion failed.
	err error
}

func newSandboxStore(cfg Config, logf func(string, ...any)) (*sandboxStore, error) {
	st := &sandboxStore{
		prefix:   strings.TrimSuffix(cfg.SandboxPrefix, "/"),
		limits:   cfg.SandboxLimits,
		ttl:      cfg.SandboxTTL,
		delay:    cfg.SandboxCompleteDelay,
		now:      cfg.Now,
		logf:     logf,
		sessions: map[sandboxKey]*sandboxSession{},
	}
	if cfg.SandboxPrefix == "" {
		st.prefix = DefaultSandboxPrefix
	} else if !strings.HasPrefix(st.prefix, "/") {
		return nil, fmt.Errorf("origin: SandboxPrefix %q must start with /", cfg.SandboxPrefix)
	}
	switch cfg.SandboxCompletion {
	case "", "async":
	case "sync":
		st.sync = true
	default:
		return nil, fmt.Errorf(`origin: SandboxCompletion %q: want "async" or "sync"`, cfg.SandboxCompletion)
	}
	d := DefaultSandboxLimits
	st.limits.MaxUploadBytes = cmpOr(st.limits.MaxUploadBytes, d.MaxUploadBytes)
	st.limits.MaxPartBytes = cmpOr(st.limits.MaxPartBytes, d.MaxPartBytes)
	st.limits.MaxConcurrency = cmpOr(st.limits.MaxConcurrency, d.MaxConcurrency)
	st.limits.StagingQuotaBytes = cmpOr(st.limits.StagingQuotaBytes, d.StagingQuotaBytes)
	if st.ttl <= 0 {
		st.ttl = defaultSandboxTTL
	}
	if st.delay <= 0 {
		st.delay = defaultSandboxCompleteDelay
	}
	if st.now == nil {
		st.now = time.Now
	}
	return st, nil
}

// cmpOr is v, or def when v is zero.
func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// clock is the store's time, in UTC as the answers give it.
func (st *sandboxStore) clock() time.Time { return st.now().UTC() }

// isOpen reports whether a session still holds staged bytes and can move on.
func isOpen(status string) bool {
	switch status {
	case SandboxCreated, SandboxUploading, SandboxStaged, SandboxCompleting:
		return true
	}
	return false
}

// lookup finds the session key names for token, brought up to date with
// now. Another token's session does not exist.
func (s *Server) lookupSandbox(key sandboxKey, token string, now time.Time) (*sandboxSession, error) {
	sess := s.sandbox.sessions[key]
	if sess == nil || subtle.ConstantTimeCompare([]byte(sess.token), []byte(token)) != 1 {
		return nil, sbErr(http.StatusNotFound, SandboxNotFoundCode, "no such upload session")
	}
	s.refreshSandbox(sess, now)
	return sess, nil
}

// refreshSandbox expires sess if its time is up. A completion under way
// is let finish.
func (s *Server) refreshSandbox(sess *sandboxSession, now time.Time) {
	if !isOpen(sess.up.Status) || sess.up.Status == SandboxCompleting || now.Before(sess.up.ExpiresAt) {
		return
	}
	s.endSandbox(sess, SandboxExpired, sess.up.ExpiresAt)
}

// endSandbox ends sess with status at t: its reservation is released and
// its staged parts removed.
func (s *Server) endSandbox(sess *sandboxSession, status string, t time.Time) {
	sess.up.Status = status
	sess.up.UpdatedAt = t
	sess.up.ReservedStagingBytes = 0
	if err := s.root.RemoveAll(sess.stage); err != nil {
		s.logf("origin: sandbox %s: removing staged parts: %v", sess.up.UploadID, err)
	}
}

// createSandboxUpload opens a session in sandbox for token, as the
// request's JSON body describes it.
func (s *Server) createSandboxUpload(r *http.Request, sandbox, token string) (SandboxUpload, error) {
	st := s.sandbox
	req, target, rel, err := readCreateRequest(r.Body, st.limits)
	if err != nil {
		return SandboxUpload{}, err
	}
	if *req.Conflict == SandboxConflictError {
		if _, err := s.root.Lstat(filepath.FromSlash(rel)); err == nil {
			return SandboxUpload{}, sbErr(http.StatusConflict, SandboxTargetExistsCode, "%s exists", target)
		} else if !errors.Is(err, fs.ErrNotExist) {
			// A file where a parent directory should be is a conflict the
			// completion will meet; say so now.
			return SandboxUpload{}, sbErr(http.StatusConflict, SandboxTargetExistsCode, "%s: %v", target, fsError(err))
		}
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id) // never fails
	uploadID := "up_" + hex.EncodeToString(id)
	stage := filepath.Join(SandboxDir, uploadID)
	if err := s.root.MkdirAll(stage, 0o755); err != nil {
		return SandboxUpload{}, err
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.clock()
	s.sweepSandboxes(now)
	var reserved uint64
	for _, o := range st.sessions {
		if o.key.sandbox == sandbox && isOpen(o.up.Status) {
			reserved += o.up.ReservedStagingBytes
		}
	}
	if length := *req.ContentLength; length > st.limits.StagingQuotaBytes-min(reserved, st.limits.StagingQuotaBytes) {
		s.root.Remove(stage)
		return SandboxUpload{}, sbErr(http.StatusInsufficientStorage, SandboxQuotaCode,
			"%d bytes would pass the sandbox's staging quota of %d bytes (%d reserved)", length, st.limits.StagingQuotaBytes, reserved)
	}
	count := partCount(*req.ContentLength, *req.PartSize)
	sess := &sandboxSession{
		key:      sandboxKey{sandbox, uploadID},
		token:    token,
		rel:      rel,
		stage:    stage,
		accepted: make([]bool, count),
		up: SandboxUpload{
			UploadID:             uploadID,
			Kind:                 *req.Kind,
			SourceKind:           SandboxSourceRestartableFile,
			TargetPath:           target,
			ContentLength:        *req.ContentLength,
			ReservedStagingBytes: *req.ContentLength,
			PartSize:             *req.PartSize,
			PartCount:            uint32(count),
			MaxConcurrency:       min(defaultSandboxConcurrency, st.limits.MaxConcurrency),
			Status:               SandboxCreated,
			Conflict:             *req.Conflict,
			ChecksumAlgorithm:    "sha256",
			Limits:               st.limits,
			CreatedAt:            now,
			UpdatedAt:            now,
			ExpiresAt:            now.Add(st.ttl),
			NextPart:             1,
		},
	}
	if *req.Kind == SandboxKindDirectoryTar {
		sess.up.SourceKind = SandboxSourceDirectoryArchive
		sess.up.ArchiveFormat = "tar"
	}
	if req.MaxConcurrency != nil {
		sess.up.MaxConcurrency = *req.MaxConcurrency
	}
	if req.User != nil {
		sess.up.User = *req.User
	}
	st.sessions[sess.key] = sess
	return sess.up, nil
}

// sweepSandboxes forgets the sessions that ended and whose expires_at is
// more than one SandboxTTL past, so a long-running origin does not keep
// them all.
func (s *Server) sweepSandboxes(now time.Time) {
	for key, sess := range s.sandbox.sessions {
		s.refreshSandbox(sess, now)
		if !isOpen(sess.up.Status) && now.After(sess.up.ExpiresAt.Add(s.sandbox.ttl)) {
			delete(s.sandbox.sessions, key)
		}
	}
}

// sandboxStatus is the session key names, for token.
func (s *Server) sandboxStatus(key sandboxKey, token string) (SandboxUpload, error) {
	s.sandbox.mu.Lock()
	defer s.sandbox.mu.Unlock()
	sess, err := s.lookupSandbox(key, token, s.sandbox.clock())
	if err != nil {
		return SandboxUpload{}, err
	}
	return sess.up, nil
}

// abortSandboxUpload aborts the session key names. Aborting it again, or a
// session that failed, changes nothing; one that completes or completed
// cannot be aborted.
func (s *Server) abortSandboxUpload(key sandboxKey, token string) error {
	s.sandbox.mu.Lock()
	defer s.sandbox.mu.Unlock()
	now := s.sandbox.clock()
	sess, err := s.lookupSandbox(key, token, now)
	if err != nil {
		return err
	}
	switch sess.up.Status {
	case SandboxCreated, SandboxUploading, SandboxStaged:
		s.endSandbox(sess, SandboxAborted, now)
	case SandboxAborted, SandboxFailed:
	default:
		return stateError(sess)
	}
	return nil
}

// stateError is why sess takes no more parts, no completion, no abort.
func stateError(sess *sandboxSession) error {
	if sess.up.Status == SandboxExpired {
		return sbErr(http.StatusGone, SandboxExpiredCode, "the upload session expired at %s", sess.up.ExpiresAt.Format(time.RFC3339))
	}
	return sbErr(http.StatusConflict, SandboxInvalidStateCode, "the upload session is %s", sess.up.Status)
}

// ExpireSandboxUpload makes the session uploadID of sandbox expire now, as
// if its expires_at had come, so tests need not wait for it. It reports
// whether there is such a session; one that completes, completed or ended
// already is left as it is.
func (s *Server) ExpireSandboxUpload(sandbox, uploadID string) bool {
	s.sandbox.mu.Lock()
	defer s.sandbox.mu.Unlock()
	sess := s.sandbox.sessions[sandboxKey{sandbox, uploadID}]
	if sess == nil {
		return false
	}
	now := s.sandbox.clock()
	if isOpen(sess.up.Status) && sess.up.Status != SandboxCompleting && now.Before(sess.up.ExpiresAt) {
		sess.up.ExpiresAt = now
		s.refreshSandbox(sess, now)
	}
	return true
}

// close cancels the completions not begun and waits for those under way.
// Their sessions stay completing: the origin is going away.
func (st *sandboxStore) close() {
	st.mu.Lock()
	st.closed = true
	for _, sess := range st.sessions {
		if sess.timer != nil && sess.timer.Stop() {
			st.running.Done()
		}
	}
	st.mu.Unlock()
	st.running.Wait()
}
