package accountimport

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
)

// TestChoose: --jid matches a device by its JID, or by its phone number
// (with or without '+' and server) when the number has one device; what
// matches nothing, or several, is a usage error naming --jid.
func TestChoose(t *testing.T) {
	one := types.NewADJID("15550001111", 0, 12)
	twoA, twoB := types.NewADJID("15550002222", 0, 3), types.NewADJID("15550002222", 0, 4)
	devs := []*Device{{JID: one, LID: types.NewADJID("987654321", 0, 12)}, {JID: twoA}, {JID: twoB}}
	devs[0].LID.Server = types.HiddenUserServer
	for _, tc := range []struct {
		name string
		opts Options
		want []types.JID
		err  string
	}{
		{"device JID", Options{JIDs: []string{one.String()}}, []types.JID{one}, ""},
		{"phone number", Options{JIDs: []string{"+15550001111"}}, []types.JID{one}, ""},
		{"phone JID", Options{JIDs: []string{"15550001111@s.whatsapp.net"}}, []types.JID{one}, ""},
		{"LID", Options{JIDs: []string{"987654321@lid"}}, []types.JID{one}, ""},
		{"twice", Options{JIDs: []string{one.String(), "15550001111"}}, []types.JID{one}, ""},
		{"two devices of a number", Options{JIDs: []string{"15550002222"}}, nil, "--jid: 15550002222: the source has 2 devices of that number"},
		{"one of them", Options{JIDs: []string{twoB.String()}}, []types.JID{twoB}, ""},
		{"unknown", Options{JIDs: []string{"15550003333"}}, nil, "--jid: 15550003333: no such device"},
		{"empty", Options{JIDs: []string{" "}}, nil, "--jid: must not be empty"},
		{"all", Options{All: true}, []types.JID{one, twoA, twoB}, ""},
		{"all with an id", Options{All: true, ID: "shop"}, nil, "--id: names one account"},
		{"nothing chosen", Options{}, nil, "--jid: choose the devices"},
	} {
		got, err := choose(devs, tc.opts)
		if tc.err != "" {
			var uerr *UsageError
			if !errors.As(err, &uerr) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want a usage error with %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%s: %v, %v", tc.name, got, err)
			continue
		}
		for i := range got {
			if got[i].JID != tc.want[i] {
				t.Errorf("%s: chose %s, want %s", tc.name, got[i].JID, tc.want[i])
			}
		}
	}
}

// TestTimeOf: the forms a TIMESTAMP column arrives in from the SQLite and
// PostgreSQL drivers.
func TestTimeOf(t *testing.T) {
	want := time.Date(2025, 3, 1, 10, 1, 0, 500_000_000, time.UTC)
	for _, v := range []any{want, "2025-03-01 10:01:00.5+00:00", []byte("2025-03-01T10:01:00.5Z"), "2025-03-01 10:01:00.5"} {
		if got, ok := timeOf(v); !ok || !got.Equal(want) {
			t.Errorf("%#v: %v %v, want %v", v, got, ok, want)
		}
	}
	if got, ok := timeOf(int64(want.Unix())); !ok || got.Unix() != want.Unix() {
		t.Errorf("unix seconds: %v %v", got, ok)
	}
	for _, v := range []any{nil, "yesterday", int64(0), time.Time{}} {
		if _, ok := timeOf(v); ok {
			t.Errorf("%#v read as a time", v)
		}
	}
}
