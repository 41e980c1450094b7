package storetest

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestProbeFailsOnPlainFerretDB is why SerialProxy exists: on FerretDB
// alone, racing conditional updates match more than once (or lose
// increments), and the probe says so.
func TestProbeFailsOnPlainFerretDB(t *testing.T) {
	srv, err := StartServer(t.TempDir(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	db := connect(t, srv.URI()).Database("probe")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = ProbeAtomicUpdates(ctx, db, ProbeOptions{Racers: 32, Rounds: 40})
	if !errors.Is(err, ErrNotAtomic) {
		t.Fatalf("probe on plain FerretDB returned %v, want ErrNotAtomic; it no longer detects non-atomic conditional updates", err)
	}
	t.Logf("plain FerretDB, as expected: %v", err)
}

// TestProbePassesOnAtomicServer: the same probe holds through the proxy.
func TestProbePassesOnAtomicServer(t *testing.T) {
	db := NewAtomicDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ProbeAtomicUpdates(ctx, db, ProbeOptions{Racers: 32, Rounds: 40}); err != nil {
		t.Fatal(err)
	}
	if atomicProxy != nil && atomicProxy.Commands() == 0 {
		t.Fatal("the atomic server's proxy forwarded no command")
	}
}

func connect(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// buildOpMsg builds an OP_MSG with one body section holding doc.
func buildOpMsg(t *testing.T, flags uint32, doc any) []byte {
	t.Helper()
	body, err := bson.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	m := make([]byte, wireHeaderLen+4+1, wireHeaderLen+4+1+len(body))
	binary.LittleEndian.PutUint32(m[4:], 7)      // requestID
	binary.LittleEndian.PutUint32(m[12:], opMsg) // opCode
	binary.LittleEndian.PutUint32(m[16:], flags)
	m[20] = 0 // section kind 0: body
	m = append(m, body...)
	binary.LittleEndian.PutUint32(m[0:], uint32(len(m)))
	return m
}

// TestSerialProxyRelaysAndRefuses drives the proxy with raw wire messages:
// a plain command gets its one reply with exhaustAllowed cleared, and a
// fire-and-forget (moreToCome) request, which could not be serialised, ends
// the connection.
func TestSerialProxyRelaysAndRefuses(t *testing.T) {
	srv, err := StartServer(t.TempDir(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	host, err := uriHost(srv.URI())
	if err != nil {
		t.Fatal(err)
	}
	p, err := StartSerialProxy("", host, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)

	tests := []struct {
		name   string
		flags  uint32
		closed bool
	}{
		{"plain", 0, false},
		{"exhaust allowed", msgExhaustAllowed, false},
		{"more to come", msgMoreToCome, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write(buildOpMsg(t, tc.flags, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})); err != nil {
				t.Fatal(err)
			}
			reply, err := readWireMessage(c)
			if tc.closed {
				if err != io.EOF {
					t.Fatalf("got reply %v, err %v; want the connection closed", reply, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if op := opcode(reply); op != opMsg {
				t.Fatalf("reply opcode %d", op)
			}
			if got := int32(binary.LittleEndian.Uint32(reply[8:12])); got != 7 {
				t.Fatalf("reply responseTo %d, want 7", got)
			}
			if f := msgFlags(reply); f&msgMoreToCome != 0 {
				t.Fatalf("reply flags %#x stream", f)
			}
			var doc struct {
				OK float64 `bson:"ok"`
			}
			if err := bson.Unmarshal(reply[wireHeaderLen+5:], &doc); err != nil || doc.OK != 1 {
				t.Fatalf("ping reply %+v, err %v", doc, err)
			}
		})
	}
}
