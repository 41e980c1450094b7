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
