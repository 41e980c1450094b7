package pluginv1

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/wildcathub/wildcat/core/event"
)

// filler sets every field of a Go value to a distinct non-zero value, so a
// field that a conversion forgets comes back zero and the comparison fails.
type filler struct{ n int }

func (f *filler) next() int { f.n++; return f.n }

func (f *filler) fill(v reflect.Value, depth int) {
	if depth > 6 {
		return
	}
	if v.Type() == reflect.TypeOf(time.Time{}) {
		v.Set(reflect.ValueOf(time.Date(2025, 3, 1, 12, 0, f.next(), 123456789, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", f.next()))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(f.next()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(f.next()))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(f.next()) + 0.5)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		f.fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			f.fill(s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		f.fill(k, depth+1)
		f.fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				f.fill(v.Field(i), depth+1)
			}
		}
	default:
		panic(fmt.Sprintf("filler: unhandled kind %s", v.Kind()))
	}
}

// TestEventRoundTripCoreFirst fills every field of the core Event (all
// payload families at once) and requires core → proto → core to be lossless.
// A field added to event.Event and not to the proto fails here.
func TestEventRoundTripCoreFirst(t *testing.T) {
	var ev event.Event
	(&filler{}).fill(reflect.ValueOf(&ev).Elem(), 0)
	got := EventToCore(EventFromCore(&ev))
	if !reflect.DeepEqual(got, &ev) {
		a, _ := json.MarshalIndent(&ev, "", " ")
		b, _ := json.MarshalIndent(got, "", " ")
		t.Fatalf("core → proto → core lost data\nwant %s\ngot  %s", a, b)
	}
}

// fillProto sets every field of a protobuf message, recursively. A field
// added to the .proto and not converted fails TestEventRoundTripProtoFirst.
func fillProto(m protoreflect.Message, n *int, depth int) {
	if m.Descriptor().FullName() == "google.protobuf.Timestamp" {
		*n++
		m.Set(m.Descriptor().Fields().ByName("seconds"), protoreflect.ValueOfInt64(1740830400+int64(*n)))
		m.Set(m.Descriptor().Fields().ByName("nanos"), protoreflect.ValueOfInt32(int32(*n)))
		return
	}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range 2 {
				if fd.Kind() == protoreflect.MessageKind {
					e := l.NewElement()
					fillProto(e.Message(), n, depth+1)
					l.Append(e)
				} else {
					l.Append(scalar(fd, n))
				}
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			mp.Set(scalar(fd.MapKey(), n).MapKey(), scalar(fd.MapValue(), n))
		case fd.Kind() == protoreflect.MessageKind:
			if depth > 5 {
				continue
			}
			fillProto(m.Mutable(fd).Message(), n, depth+1)
		default:
			m.Set(fd, scalar(fd, n))
		}
	}
}

func scalar(fd protoreflect.FieldDescriptor, n *int) protoreflect.Value {
	*n++
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprintf("s%d", *n))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{byte(*n), 0xff})
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(*n))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(*n))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(*n))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(*n))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(*n) + 0.5)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(float64(*n) + 0.5)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(1)
	}
	panic(fmt.Sprintf("scalar: unhandled kind %s", fd.Kind()))
}

// TestEventRoundTripProtoFirst fills every field of the protobuf Event and
// requires proto → core → proto to be lossless.
func TestEventRoundTripProtoFirst(t *testing.T) {
	pe := &Event{}
	n := 0
	fillProto(pe.ProtoReflect(), &n, 0)
	got := EventFromCore(EventToCore(pe))
	if diff := cmpDiff(pe, got); diff != "" {
		t.Fatalf("proto → core → proto lost data :\n%s", diff)
	}
}

func cmpDiff(want, got proto.Message) string {
	if proto.Equal(want, got) {
		return ""
	}
	return fmt.Sprintf("want %s\ngot  %s", prototext.Format(want), prototext.Format(got))
}

// TestGoldenEventsRoundTrip converts the core package's golden events — the
// public JSON contract — through the protobuf message and back.
func TestGoldenEventsRoundTrip(t *testing.T) {
	files, err := filepath.Glob("../../../../../core/event/testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden events found: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var ev event.Event
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Fatal(err)
			}
			wire, err := proto.Marshal(EventFromCore(&ev))
			if err != nil {
				t.Fatal(err)
			}
			var pe Event
			if err := proto.Unmarshal(wire, &pe); err != nil {
				t.Fatal(err)
			}
			back, err := json.Marshal(EventToCore(&pe))
			if err != nil {
				t.Fatal(err)
			}
			var a, c any
			_ = json.Unmarshal(b, &a)
			_ = json.Unmarshal(back, &c)
			if !reflect.DeepEqual(a, c) {
				t.Fatalf("JSON changed through the wire\nwant %s\ngot  %s", b, back)
			}
		})
	}
}

func TestNilConversions(t *testing.T) {
	if EventFromCore(nil) != nil || EventToCore(nil) != nil || MessageFromCore(nil) != nil || MessageToCore(nil) != nil {
		t.Fatal("nil must convert to nil")
	}
	// The zero time stays "no time" rather than becoming year 1 on the wire.
	if pe := EventFromCore(&event.Event{}); pe.Timestamp != nil {
		t.Fatalf("zero timestamp rendered as %v", pe.Timestamp)
	}
}
