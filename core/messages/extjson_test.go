package messages

import (
	"bytes"
	"math"
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/event"
)

// The fast Extended JSON path must give exactly the BSON the reference
// parser gives, or decline.
func TestExtJSONTranslationMatchesTheReferenceParser(t *testing.T) {
	for _, doc := range []string{
		`{}`,
		` { "a" : 1 , "b":[ ] , "c" : { } } `,
		`{"i32":2147483647,"i64":2147483648,"neg":-2147483649,"big":123456789012345678901234,"f":1.5,"e":1E+21,"z":-0.0,"zero":0}`,
		`{"s":"plain","esc":"q\"uote\\back\/slash\n\t\u00e9","emoji":"\ud83d\ude00 ok","utf8":"héllo 😀"}`,
		`{"lone":"\ud83d x"}`,
		`{"t":true,"f":false,"n":null,"arr":[1,"two",{"three":3},[4],null,{"$date":"2026-01-02T03:04:05.678Z"}]}`,
		`{"d":{"$date":"2026-01-02T03:04:05Z"},"old":{"$date":{"$numberLong":"-86400000"}}}`,
		`{"bin":{"$binary":{"base64":"AAEC/w==","subType":"00"}},"empty":{"$binary":{"base64":"","subType":"00"}},"uuid":{"$binary":{"subType":"04","base64":"AAAAAAAAAAAAAAAAAAAAAA=="}}}`,
		`{"l":{"$numberLong":"5"},"i":{"$numberInt":"-7"},"inf":{"$numberDouble":"Infinity"},"nan":{"$numberDouble":"NaN"}}`,
		`{"oid":{"$oid":"5f1b2c3d4e5f6a7b8c9d0e1f"}}`,
		`{"$weird":1}`,
		`{"a":{"b":{"$regularExpression":{"pattern":"x","options":""}}}}`,
		`{"bad":tru}`,
		`{"a":1}x`,
	} {
		want := bytesOrErr(func() ([]byte, error) {
			var r bson.Raw
			err := bson.UnmarshalExtJSON([]byte(doc), false, &r)
			return r, err
		})
		p := extParser{in: []byte(doc)}
		got, ok := p.document()
		if !ok {
			t.Logf("%s: falls back (reference: %q)", doc, want)
			continue
		}
		if !bytes.Equal(got, []byte(want)) {
			t.Errorf("%s:\n fast      %v\n reference %v", doc, bson.Raw(got), want)
		}
	}
}

func bytesOrErr(f func() ([]byte, error)) string {
	b, err := f()
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

// richMessage has every kind of field the document holds.
func richMessage() *Message {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	early := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	done := false
	return &Message{
		ID: "acme:M1",
		Message: event.Message{AccountID: "acme", MessageID: "M1", ChatID: "1555@s.whatsapp.net", From: "x", FromMe: true,
			Timestamp: 1767225600, Type: event.TypeImage, Text: "caption \"quoted\" é 😀 \n", HasMedia: true,
			Quoted:   &event.Quoted{MessageID: "Q", Text: "earlier"},
			Mentions: []string{"a", "b"},
			Media: &event.Media{Mimetype: "image/jpeg", Size: math.MaxInt64, MediaKey: []byte{0, 1, 2, 255},
				MediaKeyTimestamp: -5, Width: math.MaxUint32},
			Location: &event.Location{Latitude: -33.8688, Longitude: 151.2093, SpeedMps: 1.25, Sequence: 1 << 40},
			Contacts: []event.Contact{{DisplayName: "A", VCard: "BEGIN:VCARD"}},
			Poll:     &event.Poll{Name: "p", Options: []event.PollOption{{Name: "x", Hash: "ab"}}},
			PollVote: &event.PollVote{PollMessageID: "P", EncPayload: []byte{}, EncIV: []byte{9}},
			IsGroup:  true, Edited: true},
		Kind: event.KindMessageSent, Source: event.SourceAPI,
		Reaction:    &event.Reaction{TargetID: "T", Emoji: "👍"},
		EditHistory: []PreviousText{{Text: "old", EditID: "E", At: at}},
		EditedAt:    &at, RevokedAt: &early, RevokedBy: "me",
		MediaID:      "m1",
		MediaArchive: &MediaArchive{Status: MediaArchived, Size: 12, Targets: []string{"s3"}, At: at},
		Tags:         []string{"t"}, Annotations: map[string]string{"k": "v", "$odd": "x"},
		Edit:         &event.Edit{TargetID: "T", Text: "new", Message: &event.Message{Text: "new"}},
		PipelineDone: &done,
		StoredAt:     at, SortKey: SortKey(1767225600, "M1"), Rev: 3,
	}
}

// encodeDoc writes what bson.MarshalExtJSON writes, byte for byte, for
// every kind of field and every value the quoting, number and date rules
// treat apart.
func TestEncodeDocMatchesMarshalExtJSON(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	far := time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)
	// A map's keys come in a random order on every encoding, so a map here
	// has one key; the rich message's two-key map is compared through its
	// BSON below.
	rich := richMessage()
	rich.Annotations = map[string]string{"k": "v"}
	docs := []any{
		rich,
		&Message{ID: "acme:M2", StoredAt: at},
		&Message{ID: "far", StoredAt: far, EditedAt: &time.Time{}},
		bson.D{{Key: "s", Value: "ctl \x00\x01\x1f \b\f\r\t\n \"\\ <>& \u2028\u2029 \xff\xfe bad é 😀 \u007f"}},
		bson.D{{Key: "k\"ey\n\u2028", Value: 1}, {Key: "", Value: int32(-7)}, {Key: "é", Value: nil}},
		bson.D{{Key: "f", Value: []float64{0, math.Copysign(0, -1), 1, -1.5, 1e21, 1e20, 123456789.125, 1e-7, 5e-324,
			math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN()}}},
		bson.D{{Key: "i", Value: bson.A{int32(math.MinInt32), int64(math.MinInt64), int64(math.MaxInt64), true, false}}},
		bson.D{{Key: "b", Value: bson.Binary{Subtype: 0x80, Data: []byte("x")}},
			{Key: "old", Value: bson.Binary{Subtype: 0x02, Data: []byte{1, 2}}}, {Key: "empty", Value: []byte{}},
			{Key: "nested", Value: bson.A{bson.A{}, bson.D{}, bson.A{bson.D{{Key: "a", Value: bson.A{1}}}}}}},
		bson.D{{Key: "d", Value: []time.Time{time.UnixMilli(-1).UTC(), time.UnixMilli(0).UTC(), time.UnixMilli(1).UTC(),
			time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC)}}},
		// Types it does not write itself go to the reference.
		bson.D{{Key: "oid", Value: bson.ObjectID{1}}, {Key: "re", Value: bson.Regex{Pattern: "x", Options: "i"}}},
		// A key BSON cannot hold: the reference takes it, as before.
		map[string]string{"nul\x00key": "v"},
	}
	for i, v := range docs {
		want, werr := bson.MarshalExtJSON(v, false, false)
		got, gerr := encodeDoc(v)
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Errorf("doc %d:\n got  %s (%v)\n want %s (%v)", i, got, gerr, want, werr)
		}
	}
	// The translation itself, on the rich message's BSON (its map's order
	// fixed by the BSON): what the reference writes from the same bytes.
	raw, err := bson.Marshal(richMessage())
	if err != nil {
		t.Fatal(err)
	}
	want, err := bson.MarshalExtJSON(bson.Raw(raw), false, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := appendExtDoc(nil, raw, false); !ok || !bytes.Equal(got, want) {
		t.Errorf("rich message (ok %v):\n got  %s\n want %s", ok, got, want)
	}
	// Malformed BSON is declined, never misread.
	for _, bad := range [][]byte{nil, {5, 0, 0, 0}, raw[:len(raw)-7], append(raw[:4:4], 0x02, 'k', 0, 9, 0, 0, 0, 'x', 0)} {
		if _, ok := appendExtDoc(nil, bad, false); ok {
			t.Errorf("malformed %v accepted", bad)
		}
	}
}

// A message with every kind of field decodes to the same value both ways.
func TestDecodeDocMatchesUnmarshalExtJSON(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	m := richMessage()
	for _, msg := range []*Message{m, {ID: "acme:M2", StoredAt: at}} {
		doc, err := docJSON(msg)
		if err != nil {
			t.Fatal(err)
		}
		var want, got Message
		if err := bson.UnmarshalExtJSON([]byte(doc), false, &want); err != nil {
			t.Fatal(err)
		}
		if err := decodeDoc([]byte(doc), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("decodeDoc differs from UnmarshalExtJSON\n got  %+v\n want %+v\n doc %s", got, want, doc)
		}
	}
	// The benchmark's documents take the fast path.
	doc, _ := docJSON(&Message{ID: "a:b", Message: event.Message{Text: "x"}, StoredAt: at})
	if _, ok := (&extParser{in: []byte(doc)}).document(); !ok {
		t.Errorf("a plain message falls back: %s", doc)
	}
}
