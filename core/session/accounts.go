package session

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/accountid"
	"github.com/wildcathub/wildcat/core/store"
)

// State is an account's place in its lifecycle:
//
//	created → pairing → connected ⇄ disconnected → logged_out
//
// logged_out accounts pair again through connect (→ pairing).
type State string

const (
	// StateCreated: never paired; connect starts pairing.
	StateCreated State = "created"
	// StatePairing: waiting for a QR scan or a pairing code on the phone.
	StatePairing State = "pairing"
	// StateConnected: linked and online.
	StateConnected State = "connected"
	// StateDisconnected: linked but offline; the driver reconnects.
	StateDisconnected State = "disconnected"
	// StateLoggedOut: unlinked (by the API or from the phone); must pair again.
	StateLoggedOut State = "logged_out"
)

// AccountInfo is one document of the accounts collection. It is the truth
// about an account: every daemon reads it, nothing about an account lives
// only in memory.
type AccountInfo struct {
	ID     string `bson:"_id"`
	Driver string `bson:"driver"`
	Name   string `bson:"name"`
	State  State  `bson:"state"`
	// Reason explains the last state transition (e.g. "stream replaced").
	Reason    string `bson:"reason,omitempty"`
	JID       string `bson:"jid,omitempty"`
	PushName  string `bson:"pushName,omitempty"`
	LastError string `bson:"lastError,omitempty"`
	// Since is when the account entered State.
	Since     time.Time `bson:"since"`
	CreatedAt time.Time `bson:"createdAt"`
	UpdatedAt time.Time `bson:"updatedAt"`
	// QR is the current code while pairing, kept here so any daemon can
	// answer GET /qr.
	QR          *QR    `bson:"qr,omitempty"`
	PairingCode string `bson:"pairingCode,omitempty"`
}

// QR is a pairing QR code and when it stops being valid.
type QR struct {
	Code      string    `bson:"code"`
	ExpiresAt time.Time `bson:"expiresAt"`
}

// AccountSpec is what a caller chooses when creating an account.
type AccountSpec struct {
	ID     string
	Driver string
	Name   string
}

// Errors of account management; callers decide by them.
var (
	// ErrAccountNotFound: no account has that id. Answer 404.
	ErrAccountNotFound = errors.New("account not found")
	// ErrAccountExists: the id is taken. Answer 409.
	ErrAccountExists = errors.New("account already exists")
	// ErrDriverUnavailable: the account's driver is known but not part of
	// this build or not registered. Answer 503; the account itself is fine.
	ErrDriverUnavailable = errors.New("driver not available")
)

// InvalidError is a request value the manager refuses; Field names it.
// Answer 400.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// accountStore reads and writes the accounts collection.
type accountStore struct {
	c     *mongo.Collection
	locks stripedLock
}

func (s *accountStore) insert(ctx context.Context, spec AccountSpec, now time.Time) (*AccountInfo, error) {
	a := &AccountInfo{ID: spec.ID, Driver: spec.Driver, Name: spec.Name, State: StateCreated, Since: now, CreatedAt: now, UpdatedAt: now}
	if _, err := s.c.InsertOne(ctx, a); err != nil {
		if store.IsDuplicateKey(err) {
			return nil, fmt.Errorf("account %q: %w", spec.ID, ErrAccountExists)
		}
		return nil, fmt.Errorf("create account %q: %w", spec.ID, err)
	}
	return a, nil
}

func (s *accountStore) get(ctx context.Context, id string) (*AccountInfo, error) {
	var a AccountInfo
	err := s.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&a)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("account %q: %w", id, ErrAccountNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read account %q: %w", id, err)
	}
	return &a, nil
}

func (s *accountStore) list(ctx context.Context) ([]*AccountInfo, error) {
	cur, err := s.c.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	out := []*AccountInfo{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

func (s *accountStore) delete(ctx context.Context, id string) error {
	if _, err := s.c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("delete account %q: %w", id, err)
	}
	return nil
}

// change is one update of an account document.
type change struct {
	state  State // "" keeps the state
	reason string
	at     time.Time
	set    bson.D
	unset  []string
}

// apply writes c. A change of state also sets since and reason; the same
// state again (a rotating QR code) only updates the other fields, so since
// stays the time of the transition. A missing account (deleted while its
// session still ran) is not an error.
func (s *accountStore) apply(ctx context.Context, id string, c change) error {
	defer s.locks.lock(id)()
	set := append(bson.D{{Key: "updatedAt", Value: time.Now().UTC()}}, c.set...)
	update := func(filter, set bson.D) (*mongo.UpdateResult, error) {
		u := bson.D{{Key: "$set", Value: set}}
		if len(c.unset) > 0 {
			un := bson.D{}
			for _, f := range c.unset {
				un = append(un, bson.E{Key: f, Value: ""})
			}
			u = append(u, bson.E{Key: "$unset", Value: un})
		}
		return s.c.UpdateOne(ctx, filter, u)
	}
	if c.state != "" {
		res, err := update(
			bson.D{{Key: "_id", Value: id}, {Key: "state", Value: bson.D{{Key: "$ne", Value: c.state}}}},
			append(bson.D{{Key: "state", Value: c.state}, {Key: "since", Value: c.at.UTC()}, {Key: "reason", Value: c.reason}}, set...))
		if err != nil {
			return fmt.Errorf("update account %q to %s: %w", id, c.state, err)
		}
		if res.MatchedCount > 0 {
			return nil
		}
	}
	if _, err := update(bson.D{{Key: "_id", Value: id}}, set); err != nil {
		return fmt.Errorf("update account %q: %w", id, err)
	}
	return nil
}

// stripedLock serialises this process's writes to one document: the
// embedded engine runs a conditional update as read, modify, unconditional
// write, so two concurrent ones can both match (see messages.docLocks).
type stripedLock struct {
	stripes [32]sync.Mutex
}

func (l *stripedLock) lock(id string) (unlock func()) {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &l.stripes[h.Sum32()%uint32(len(l.stripes))]
	m.Lock()
	return m.Unlock
}

// validateSpec checks an account to be created.
func validateSpec(spec AccountSpec) error {
	if err := accountid.Check(spec.ID); err != nil {
		return &InvalidError{Field: "id", Reason: err.Error()}
	}
	if err := accountid.CheckDriver(spec.Driver); err != nil {
		return &InvalidError{Field: "driver", Reason: err.Error()}
	}
	if len(spec.Name) > 256 {
		return &InvalidError{Field: "name", Reason: "must be at most 256 bytes"}
	}
	return nil
}
