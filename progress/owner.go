package progress

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"sync"
)

// Owner identifies who made an upload without keeping their credential: it
// is an HMAC of the credential under a secret of the tracker, so a memory
// dump or a shared store never holds a usable key.
//
// Records are namespaced by owner: the same key uploaded by two owners is two
// records, and one owner's lookups can never see, or learn of, another's.
type Owner [sha256.Size]byte

// Anyone is the owner of records when ownership checks are off.
var Anyone Owner

// ownerHasher turns credentials into Owners.
type ownerHasher struct {
	secret [32]byte
	// macs holds keyed HMAC states for reuse. Keying one costs two SHA-256
	// blocks and several allocations, which every upload and every status
	// request with an owner would pay; Reset puts a used one back to the
	// keyed state.
	macs sync.Pool
}

// newOwnerHasher hashes under secret, or under a random secret of its own
// when secret is empty: then no other tracker can find its records, which
// is right for one proxy and wrong for proxies sharing a store.
func newOwnerHasher(secret []byte) *ownerHasher {
	h := &ownerHasher{}
	if len(secret) > 0 {
		// HMAC-SHA256 hashes a key longer than a block; the sum of the
		// configured secret is as good a key and fits the array.
		h.secret = sha256.Sum256(secret)
		return h
	}
	if _, err := rand.Read(h.secret[:]); err != nil {
		panic("progress: no randomness for the owner secret: " + err.Error())
	}
	return h
}

func (h *ownerHasher) owner(credential string) Owner {
	m, _ := h.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, h.secret[:])
	}
	m.Write([]byte(credential))
	var o Owner
	m.Sum(o[:0])
	m.Reset()
	h.macs.Put(m)
	return o
}
