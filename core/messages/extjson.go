package messages

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// decodeDoc decodes a message document stored as relaxed Extended JSON
// (docJSON) into m.
//
// bson.UnmarshalExtJSON is the reference decoder, but its parser spends
// about four times as long as decoding the same document from BSON: on a
// 50-message history page it was most of the page's cost. So the shapes
// docJSON writes (objects, arrays, strings, numbers, booleans, null, and the
// $date, $binary, $numberLong, $numberInt and $numberDouble wrappers) are
// translated to BSON here, with the same type rules as the reference parser
// (an integer is an int32 when it fits, else an int64, else a double; a
// number with a fraction or an exponent is a double), and decoded from
// that. Anything else, including any other $-key, goes to the reference
// decoder, so the result is always the same as bson.UnmarshalExtJSON's.
func decodeDoc(doc []byte, m *Message) error {
	p := extParser{in: doc}
	if raw, ok := p.document(); ok {
		var fast Message
		if err := bson.Unmarshal(raw, &fast); err == nil {
			*m = fast
			return nil
		}
	}
	return bson.UnmarshalExtJSON(doc, false, m)
}

// extParser translates one relaxed Extended JSON document to BSON. ok
// false means "not a shape this parser knows": the caller falls back.
type extParser struct {
	in  []byte
	pos int
	out []byte
}

var errFallback = errors.New("extjson: fall back")

func (p *extParser) document() (raw []byte, ok bool) {
	p.out = make([]byte, 0, len(p.in))
	p.ws()
	if p.peek() != '{' {
		return nil, false
	}
	p.pos++
	p.out = append(p.out, 0, 0, 0, 0)
	if err := p.members(); err != nil {
		return nil, false
	}
	p.end(0)
	p.ws()
	if p.pos != len(p.in) {
		return nil, false
	}
	return p.out, true
}

func (p *extParser) peek() byte {
	if p.pos < len(p.in) {
		return p.in[p.pos]
	}
	return 0
}

func (p *extParser) ws() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *extParser) expect(c byte) error {
	p.ws()
	if p.peek() != c {
		return errFallback
	}
	p.pos++
	return nil
}

// members reads `"key": value, ...}` after an object's '{' (that is not
// a wrapper) and appends the elements.
func (p *extParser) members() error {
	p.ws()
	if p.peek() == '}' {
		p.pos++
		return nil
	}
	for {
		p.ws()
		key, err := p.str()
		if err != nil {
			return err
		}
		if len(key) > 0 && key[0] == '$' {
			return errFallback // a wrapper where a field was expected, or a $-field
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		if err := p.value(key); err != nil {
			return err
		}
		p.ws()
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return nil
		default:
			return errFallback
		}
	}
}

// value reads one value and appends it as the element key.
func (p *extParser) value(key []byte) error {
	p.ws()
	switch c := p.peek(); {
	case c == '"':
		s, err := p.str()
		if err != nil {
			return err
		}
		p.appendString(key, s)
	case c == '{':
		return p.object(key)
	case c == '[':
		p.pos++
		idx := p.start(bsoncore.TypeArray, key)
		p.ws()
		if p.peek() == ']' {
			p.pos++
		} else {
			var num [20]byte
			for i := 0; ; i++ {
				if err := p.value(strconv.AppendInt(num[:0], int64(i), 10)); err != nil {
					return err
				}
				p.ws()
				if p.peek() == ']' {
					p.pos++
					break
				}
				if p.peek() != ',' {
					return errFallback
				}
				p.pos++
			}
		}
		p.end(idx)
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if len(p.in)-p.pos >= len(lit) && string(p.in[p.pos:p.pos+len(lit)]) == lit {
				p.pos += len(lit)
				if lit == "null" {
					p.header(bsoncore.TypeNull, key)
				} else {
					p.header(bsoncore.TypeBoolean, key)
					p.out = append(p.out, b2byte(lit == "true"))
				}
				return nil
			}
		}
		return errFallback
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(key)
	default:
		return errFallback
	}
	return nil
}

// number appends a JSON number with the reference parser's types.
func (p *extParser) number(key []byte) error {
	start, isFloat := p.pos, false
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		if c == '.' || c == 'e' || c == 'E' {
			isFloat = true
		} else if !(c == '-' || c == '+' || (c >= '0' && c <= '9')) {
			break
		}
		p.pos++
	}
	lit := p.in[start:p.pos]
	if !isFloat {
		if v, err := strconv.ParseInt(string(lit), 10, 64); err == nil {
			if v < math.MinInt32 || v > math.MaxInt32 {
				p.appendInt64(key, v)
			} else {
				p.appendInt32(key, int32(v))
			}
			return nil
		}
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return errFallback
	}
	p.appendDouble(key, f)
	return nil
}

// object appends an embedded document, or the value of a wrapper.
func (p *extParser) object(key []byte) error {
	p.pos++ // '{'
	save := p.pos
	p.ws()
	if p.peek() == '"' && p.pos+1 < len(p.in) && p.in[p.pos+1] == '$' {
		return p.wrapper(key)
	}
	p.pos = save
	idx := p.start(bsoncore.TypeEmbeddedDocument, key)
	if err := p.members(); err != nil {
		return err
	}
	p.end(idx)
	return nil
}

// wrapper appends the value of {"$date": ...}, {"$binary": {...}},
// {"$numberLong": "..."}, {"$numberInt": "..."} or {"$numberDouble": "..."}.
func (p *extParser) wrapper(key []byte) error {
	name, err := p.str()
	if err != nil {
		return err
	}
	if err := p.expect(':'); err != nil {
		return err
	}
	p.ws()
	switch string(name) {
	case "$date":
		var ms int64
		if p.peek() == '"' {
			s, err := p.str()
			if err != nil {
				return err
			}
			t, err := time.Parse(time.RFC3339Nano, string(s))
			if err != nil {
				return errFallback
			}
			ms = t.UnixMilli()
		} else {
			if ms, err = p.wrappedInt("$numberLong"); err != nil {
				return err
			}
		}
		p.header(bsoncore.TypeDateTime, key)
		p.out = binary.LittleEndian.AppendUint64(p.out, uint64(ms))
	case "$binary":
		if err := p.expect('{'); err != nil {
			return err
		}
		var data []byte
		var sub []byte
		for range 2 {
			p.ws()
			k, err := p.str()
			if err != nil {
				return err
			}
			if err := p.expect(':'); err != nil {
				return err
			}
			p.ws()
			v, err := p.str()
			if err != nil {
				return err
			}
			switch string(k) {
			case "base64":
				if data, err = base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(len(v))), v); err != nil {
					return errFallback
				}
			case "subType":
				if sub, err = hex.AppendDecode(nil, v); err != nil || len(sub) != 1 {
					return errFallback
				}
			default:
				return errFallback
			}
			p.ws()
			if p.peek() == ',' {
				p.pos++
			}
		}
		if sub == nil || sub[0] == 0x02 { // the old binary subtype has its own layout
			return errFallback
		}
		if err := p.expect('}'); err != nil {
			return err
		}
		p.header(bsoncore.TypeBinary, key)
		p.out = binary.LittleEndian.AppendUint32(p.out, uint32(len(data)))
		p.out = append(append(p.out, sub[0]), data...)
	case "$numberLong", "$numberInt", "$numberDouble":
		s, err := p.str()
		if err != nil {
			return err
		}
		switch string(name) {
		case "$numberLong":
			v, err := strconv.ParseInt(string(s), 10, 64)
			if err != nil {
				return errFallback
			}
			p.appendInt64(key, v)
		case "$numberInt":
			v, err := strconv.ParseInt(string(s), 10, 32)
			if err != nil {
				return errFallback
			}
			p.appendInt32(key, int32(v))
		default:
			var f float64
			switch string(s) {
			case "Infinity":
				f = math.Inf(1)
			case "-Infinity":
				f = math.Inf(-1)
			case "NaN":
				f = math.NaN()
			default:
				if f, err = strconv.ParseFloat(string(s), 64); err != nil {
					return errFallback
				}
			}
			p.appendDouble(key, f)
		}
	default:
		return errFallback
	}
	return p.expect('}')
}

// wrappedInt reads {"$numberLong": "n"} (name is the only key accepted).
func (p *extParser) wrappedInt(name string) (int64, error) {
	if err := p.expect('{'); err != nil {
		return 0, err
	}
	p.ws()
	k, err := p.str()
	if err != nil || string(k) != name {
		return 0, errFallback
	}
	if err := p.expect(':'); err != nil {
		return 0, err
	}
	p.ws()
	s, err := p.str()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		return 0, errFallback
	}
	return v, p.expect('}')
}

// str reads a JSON string at pos. One without escapes is a slice of the
// input; one with escapes is unquoted by encoding/json (surrogate pairs
// and all). A string holding NUL (not allowed in a BSON key) or invalid
// UTF-8 falls back.
func (p *extParser) str() ([]byte, error) {
	if p.peek() != '"' {
		return nil, errFallback
	}
	start := p.pos
	p.pos++
	escaped := false
	for p.pos < len(p.in) {
		switch c := p.in[p.pos]; {
		case c == '\\':
			escaped = true
			p.pos += 2
			continue
		case c == '"':
			p.pos++
			if !escaped {
				if !utf8.Valid(p.in[start+1 : p.pos-1]) {
					return nil, errFallback
				}
				return p.in[start+1 : p.pos-1], nil
			}
			var s string
			if err := json.Unmarshal(p.in[start:p.pos], &s); err != nil || strings.IndexByte(s, 0) >= 0 {
				return nil, errFallback
			}
			return []byte(s), nil
		case c < 0x20:
			return nil, errFallback
		}
		p.pos++
	}
	return nil, errFallback
}

// BSON elements with the key as bytes (bsoncore's take strings, which
// would cost an allocation per key).
func (p *extParser) header(t bsoncore.Type, key []byte) {
	p.out = append(append(append(p.out, byte(t)), key...), 0)
}

func (p *extParser) appendString(key, val []byte) {
	p.header(bsoncore.TypeString, key)
	p.out = binary.LittleEndian.AppendUint32(p.out, uint32(len(val)+1))
	p.out = append(append(p.out, val...), 0)
}

func (p *extParser) appendInt32(key []byte, v int32) {
	p.header(bsoncore.TypeInt32, key)
	p.out = binary.LittleEndian.AppendUint32(p.out, uint32(v))
}

func (p *extParser) appendInt64(key []byte, v int64) {
	p.header(bsoncore.TypeInt64, key)
	p.out = binary.LittleEndian.AppendUint64(p.out, uint64(v))
}

func (p *extParser) appendDouble(key []byte, f float64) {
	p.header(bsoncore.TypeDouble, key)
	p.out = binary.LittleEndian.AppendUint64(p.out, math.Float64bits(f))
}

// start opens an embedded document or array; end closes it (or the top
// document) by writing its length at idx.
func (p *extParser) start(t bsoncore.Type, key []byte) int {
	p.header(t, key)
	idx := len(p.out)
	p.out = append(p.out, 0, 0, 0, 0)
	return idx
}

func (p *extParser) end(idx int) {
	p.out = append(p.out, 0)
	binary.LittleEndian.PutUint32(p.out[idx:], uint32(len(p.out)-idx))
}

func b2byte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// encodeDoc is bson.MarshalExtJSON(v, false, false), relaxed Extended JSON,
// written from v's BSON. The driver's Extended JSON writer formats every
// key through fmt and every string through a buffer of its own: encoding
// the stored document was a tenth of all the bytes allocated per event
// end to end. The output is the reference's byte for byte
// (TestEncodeDocMatchesMarshalExtJSON, FuzzEncodeDoc); a BSON type this
// writer does not know sends the whole value to the reference.
func encodeDoc(v any) ([]byte, error) {
	// The fallback also takes what BSON cannot hold and Extended JSON can
	// (a key with a NUL byte), so the document stays storable as before.
	if raw, err := bson.Marshal(v); err == nil {
		if out, ok := appendExtDoc(make([]byte, 0, len(raw)+len(raw)/2), raw, false); ok {
			return out, nil
		}
	}
	return bson.MarshalExtJSON(v, false, false)
}

// appendExtDoc appends the BSON document (or, with array, the array) doc
// as relaxed Extended JSON; ok false means a type it does not write, or
// malformed BSON.
func appendExtDoc(dst, doc []byte, array bool) (out []byte, ok bool) {
	if len(doc) < 5 || int(binary.LittleEndian.Uint32(doc)) != len(doc) || doc[len(doc)-1] != 0 {
		return dst, false
	}
	open, close := byte('{'), byte('}')
	if array {
		open, close = '[', ']'
	}
	dst = append(dst, open)
	rem := doc[4 : len(doc)-1]
	for first := true; len(rem) > 0; first = false {
		elem, rest, ok := bsoncore.ReadElement(rem)
		if !ok {
			return dst, false
		}
		rem = rest
		if !first {
			dst = append(dst, ',')
		}
		if !array {
			dst = appendExtString(dst, elem.KeyBytes())
			dst = append(dst, ':')
		}
		if dst, ok = appendExtValue(dst, elem.Value()); !ok {
			return dst, false
		}
	}
	return append(dst, close), true
}

func appendExtValue(dst []byte, v bsoncore.Value) ([]byte, bool) {
	switch v.Type {
	case bsoncore.TypeString:
		if len(v.Data) < 5 {
			return dst, false
		}
		return appendExtString(dst, v.Data[4:len(v.Data)-1]), true
	case bsoncore.TypeEmbeddedDocument:
		return appendExtDoc(dst, v.Data, false)
	case bsoncore.TypeArray:
		return appendExtDoc(dst, v.Data, true)
	case bsoncore.TypeInt32:
		i, ok := v.Int32OK()
		return strconv.AppendInt(dst, int64(i), 10), ok
	case bsoncore.TypeInt64:
		i, ok := v.Int64OK()
		return strconv.AppendInt(dst, i, 10), ok
	case bsoncore.TypeDouble:
		f, ok := v.DoubleOK()
		return appendExtDouble(dst, f), ok
	case bsoncore.TypeBoolean:
		b, ok := v.BooleanOK()
		return strconv.AppendBool(dst, b), ok
	case bsoncore.TypeNull:
		return append(dst, "null"...), true
	case bsoncore.TypeDateTime:
		ms, ok := v.DateTimeOK()
		t := time.Unix(ms/1e3, ms%1e3*1e6).UTC()
		if t.Year() < 1970 || t.Year() > 9999 {
			dst = append(dst, `{"$date":{"$numberLong":"`...)
			dst = strconv.AppendInt(dst, ms, 10)
			return append(dst, `"}}`...), ok
		}
		dst = append(dst, `{"$date":"`...)
		dst = t.AppendFormat(dst, "2006-01-02T15:04:05.999Z07:00")
		return append(dst, `"}`...), ok
	case bsoncore.TypeBinary:
		sub, data, ok := v.BinaryOK()
		dst = append(dst, `{"$binary":{"base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, data)
		dst = append(dst, `","subType":"`...)
		dst = append(dst, hexDigits[sub>>4], hexDigits[sub&0xf])
		return append(dst, `"}}`...), ok
	}
	return dst, false
}

// appendExtDouble is the reference's relaxed double: integral values with
// one decimal place, the rest as short as round-trips, non-finite ones
// wrapped.
func appendExtDouble(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, `{"$numberDouble":"Infinity"}`...)
	case math.IsInf(f, -1):
		return append(dst, `{"$numberDouble":"-Infinity"}`...)
	case math.IsNaN(f):
		return append(dst, `{"$numberDouble":"NaN"}`...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'G', -1, 64)
	for _, c := range dst[start:] {
		if c == '.' || c == 'E' {
			return dst
		}
	}
	return append(dst, ".0"...)
}

const hexDigits = "0123456789abcdef"

// appendExtString appends s quoted the way the reference writer quotes
// (without HTML escaping): ", \ and control characters escaped, invalid
// UTF-8 as \ufffd, and U+2028 and U+2029 escaped.
func appendExtString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRune(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
