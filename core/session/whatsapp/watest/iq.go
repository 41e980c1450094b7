package watest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"

	"go.mau.fi/libsignal/ecc"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// handleIQ answers a get/set IQ from the client. Every IQ gets an answer:
// an unanswered one makes whatsmeow wait 75 s, turning a failing test slow
// instead of red. Stalled IQs are answered when their stall is released.
func (s *Server) handleIQ(c *conn, node *waBinary.Node) {
	if st := s.matchStall(node); st != nil {
		s.logf("%s: stalling IQ %s", c.name, node.XMLString())
		go func() {
			defer s.recoverNode(c, node)
			select {
			case <-st.released:
				s.answerIQ(c, node)
			case <-c.ctx.Done():
			}
		}()
		return
	}
	s.answerIQ(c, node)
}

func (s *Server) answerIQ(c *conn, node *waBinary.Node) {
	xmlns, _ := node.Attrs["xmlns"].(string)
	typ, _ := node.Attrs["type"].(string)
	var content []waBinary.Node
	var iqErr *iqError
	var after func() // runs once the answer is out (group notifications)
	switch {
	case xmlns == "w:g2":
		content, after, iqErr = s.groupIQ(c, node)
	case xmlns == "w:profile:picture" && typ == "set":
		content, after, iqErr = s.groupPicture(c, node)
	case xmlns == "w:mex":
		content = s.mexIQ(c, node)
	case xmlns == "newsletter" && typ == "get":
		content, iqErr = s.newsletterIQ(c, node)
	case xmlns == "w:p":
		// keepalive
	case xmlns == "passive" && typ == "set":
		defer s.loginComplete(c)
	case xmlns == "encrypt" && typ == "get" && hasChild(node, "count"):
		content = s.preKeyCount(c)
	case xmlns == "encrypt" && typ == "set" && hasChild(node, "list"):
		iqErr = s.storePreKeys(c, node)
	case xmlns == "encrypt" && typ == "get" && hasChild(node, "key"):
		content = s.preKeyBundles(c, node)
	case xmlns == "usync":
		content = s.usync(c, node)
	case xmlns == "w:m" && hasChild(node, "media_conn"):
		content = s.mediaConn()
	case xmlns == "md" && hasChild(node, "link_code_companion_reg"):
		content, iqErr = s.linkCodeIQ(c, node)
	case xmlns == "privacy" && typ == "get":
		content = privacySettings()
	case xmlns == "md" && hasChild(node, "remove-companion-device"):
		s.removeCompanion(c)
	default:
		s.logf("%s: no specific answer for IQ %s; answering with an empty result", c.name, node.XMLString())
	}
	answer := waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"from": serverJID,
		"id":   node.Attrs["id"],
		"type": "result",
	}}
	if iqErr != nil {
		s.logf("%s: answering IQ %s with error %d %s", c.name, node.XMLString(), iqErr.code, iqErr.text)
		answer.Attrs["type"] = "error"
		content = []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": strconv.Itoa(iqErr.code), "text": iqErr.text}}}
	}
	if len(content) > 0 {
		answer.Content = content
	}
	if err := c.send(answer); err != nil {
		s.logf("%v", err)
	}
	if after != nil && iqErr == nil {
		after()
	}
}

type iqError struct {
	code int
	text string
}

// childrenOf is GetChildren for the value GetChildByTag returns.
func childrenOf(n waBinary.Node) []waBinary.Node { return n.GetChildren() }

func hasChild(node *waBinary.Node, tag string) bool {
	_, ok := node.GetOptionalChildByTag(tag)
	return ok
}

// preKeyCount answers how many one-time pre-keys the server holds. Before
// the first upload it claims whatsmeow's minimum, so the first upload is 50
// keys rather than 812; afterwards it tells the truth.
func (s *Server) preKeyCount(c *conn) []waBinary.Node {
	s.mu.Lock()
	n := s.opts.reportedCount
	if a := c.account; a != nil && a.uploads > 0 {
		n = len(a.preKeys)
	}
	s.mu.Unlock()
	return []waBinary.Node{{Tag: "count", Attrs: waBinary.Attrs{"value": strconv.Itoa(n)}}}
}

// storePreKeys keeps an upload (encrypt set) for the bundles contacts build
// their sessions from.
func (s *Server) storePreKeys(c *conn, node *waBinary.Node) *iqError {
	bad := &iqError{400, "bad-request"}
	reg, _ := node.GetChildByTag("registration").Content.([]byte)
	ident, _ := node.GetChildByTag("identity").Content.([]byte)
	if len(reg) != 4 || len(ident) != 32 {
		s.logf("%s: pre-key upload without registration or identity", c.name)
		return bad
	}
	if typ, _ := node.GetChildByTag("type").Content.([]byte); !bytes.Equal(typ, []byte{ecc.DjbType}) {
		s.logf("%s: pre-key upload with key type %x", c.name, typ)
		return bad
	}
	skey, err := parsePreKey(node.GetChildByTag("skey"), true)
	if err != nil {
		s.logf("%s: pre-key upload: signed pre-key: %v", c.name, err)
		return bad
	}
	list := childrenOf(node.GetChildByTag("list"))
	keys := make([]*publicPreKey, 0, len(list))
	for _, k := range list {
		pk, err := parsePreKey(k, false)
		if err != nil {
			s.logf("%s: pre-key upload: %v", c.name, err)
			return bad
		}
		keys = append(keys, pk)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	a := c.account
	if a == nil {
		s.logf("%s: pre-key upload before login", c.name)
		return &iqError{401, "not-authorized"}
	}
	if !bytes.Equal(ident, a.identityKey[:]) {
		s.logf("%s: pre-key upload with identity %x, paired with %x", c.name, ident, a.identityKey)
		return bad
	}
	a.regID = binary.BigEndian.Uint32(reg)
	a.signedPreKey = skey
	a.preKeys = append(a.preKeys, keys...)
	a.uploads++
	s.notify()
	return nil
}

func parsePreKey(node waBinary.Node, signed bool) (*publicPreKey, error) {
	id, _ := node.GetChildByTag("id").Content.([]byte)
	val, _ := node.GetChildByTag("value").Content.([]byte)
	if len(id) != 3 || len(val) != 32 {
		return nil, fmt.Errorf("malformed pre-key %s", node.XMLString())
	}
	pk := &publicPreKey{id: preKeyID(id), pub: [32]byte(val)}
	if signed {
		sig, _ := node.GetChildByTag("signature").Content.([]byte)
		if len(sig) != 64 {
			return nil, fmt.Errorf("signed pre-key without a 64-byte signature")
		}
		pk.sig = (*[64]byte)(bytes.Clone(sig))
	}
	return pk, nil
}

// preKeyBundles answers a bundle fetch (encrypt get <key><user jid/>…) for
// contacts and for paired accounts. Any phone number is on WhatsApp: an
// unknown one becomes a contact.
func (s *Server) preKeyBundles(c *conn, node *waBinary.Node) []waBinary.Node {
	var users []waBinary.Node
	for _, u := range childrenOf(node.GetChildByTag("key")) {
		jid, ok := u.Attrs["jid"].(types.JID)
		if u.Tag != "user" || !ok {
			continue
		}
		users = append(users, s.bundleFor(c, jid))
	}
	return []waBinary.Node{{Tag: "list", Content: users}}
}

func (s *Server) bundleFor(c *conn, jid types.JID) waBinary.Node {
	notFound := waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: []waBinary.Node{{
		Tag: "error", Attrs: waBinary.Attrs{"code": "404", "text": "item-not-found"},
	}}}
	s.mu.Lock()
	a := s.accountByJIDLocked(jid)
	var b *bundle
	if a != nil && jid.Device == a.jid.Device {
		b = a.takeBundleLocked()
	}
	s.mu.Unlock()
	if a != nil {
		if b == nil {
			return notFound
		}
		return bundleNode(jid, b)
	}
	if jid.Server != types.DefaultUserServer || jid.Device != 0 {
		s.logf("%s: no pre-keys for %s", c.name, jid)
		return notFound
	}
	return bundleNode(jid, s.Contact(jid.User).bundle())
}

// bundle is a pre-key bundle in the shape whatsmeow parses.
type bundle struct {
	regID    uint32
	identity [32]byte
	signed   *publicPreKey
	oneTime  *publicPreKey // optional
}

func bundleNode(jid types.JID, b *bundle) waBinary.Node {
	var reg [4]byte
	binary.BigEndian.PutUint32(reg[:], b.regID)
	content := []waBinary.Node{
		{Tag: "registration", Content: reg[:]},
		{Tag: "type", Content: []byte{ecc.DjbType}},
		{Tag: "identity", Content: b.identity[:]},
		preKeyNode(b.signed),
	}
	if b.oneTime != nil {
		content = append(content, preKeyNode(b.oneTime))
	}
	return waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: content}
}

func preKeyNode(k *publicPreKey) waBinary.Node {
	id := []byte{byte(k.id >> 16), byte(k.id >> 8), byte(k.id)}
	n := waBinary.Node{Tag: "key", Content: []waBinary.Node{
		{Tag: "id", Content: id},
		{Tag: "value", Content: bytes.Clone(k.pub[:])},
	}}
	if k.sig != nil {
		n.Tag = "skey"
		n.Content = append(n.GetChildren(), waBinary.Node{Tag: "signature", Content: bytes.Clone(k.sig[:])})
	}
	return n
}

// takeBundleLocked hands out the account's bundle, consuming one one-time
// pre-key as WhatsApp does. Nil before the companion published any keys.
func (a *Account) takeBundleLocked() *bundle {
	if a.signedPreKey == nil {
		return nil
	}
	b := &bundle{regID: a.regID, identity: a.identityKey, signed: a.signedPreKey}
	if len(a.preKeys) > 0 {
		b.oneTime, a.preKeys = a.preKeys[0], a.preKeys[1:]
	}
	return b
}

// usync answers user queries. Contacts have one device (0, their phone);
// an account lists only its companion, which whatsmeow leaves out of its own
// fan-out. No LIDs are disclosed, so the client keeps addressing contacts by
// phone number.
func (s *Server) usync(c *conn, node *waBinary.Node) []waBinary.Node {
	us := node.GetChildByTag("usync")
	queries := childrenOf(us.GetChildByTag("query"))
	var users []waBinary.Node
	for _, u := range childrenOf(us.GetChildByTag("list")) {
		if u.Tag != "user" {
			continue
		}
		jid, ok := u.Attrs["jid"].(types.JID)
		if !ok {
			// Phone-number lookups (IsOnWhatsApp) name the number as content.
			if contact, ok := u.GetOptionalChildByTag("contact"); ok {
				num, _ := contact.Content.([]byte)
				phone := digitsOnly(string(num))
				users = append(users, waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{
					"jid": types.NewJID(phone, types.DefaultUserServer),
				}, Content: []waBinary.Node{{Tag: "contact", Attrs: waBinary.Attrs{"type": "in"}, Content: num}}})
			}
			continue
		}
		jid = jid.ToNonAD()
		var devices []uint16
		s.mu.Lock()
		if a := s.accountByJIDLocked(jid); a != nil {
			devices = []uint16{a.jid.Device}
		} else if jid.Server == types.DefaultUserServer {
			devices = []uint16{0}
		}
		s.mu.Unlock()
		var children []waBinary.Node
		for _, q := range queries {
			switch q.Tag {
			case "devices":
				list := make([]waBinary.Node, len(devices))
				for i, d := range devices {
					list[i] = waBinary.Node{Tag: "device", Attrs: waBinary.Attrs{"id": strconv.Itoa(int(d))}}
				}
				children = append(children, waBinary.Node{Tag: "devices", Content: []waBinary.Node{
					{Tag: "device-list", Content: list},
				}})
			case "contact":
				children = append(children, waBinary.Node{Tag: "contact", Attrs: waBinary.Attrs{"type": "in"}})
			default:
				children = append(children, waBinary.Node{Tag: q.Tag})
			}
		}
		users = append(users, waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: children})
	}
	attrs := waBinary.Attrs{"index": "0", "last": "true"}
	if sid, ok := us.Attrs["sid"].(string); ok {
		attrs["sid"] = sid
	}
	return []waBinary.Node{{Tag: "usync", Attrs: attrs, Content: []waBinary.Node{{Tag: "list", Content: users}}}}
}

func digitsOnly(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			out = append(out, s[i])
		}
	}
	return string(out)
}

// privacySettings are WhatsApp's defaults: everyone sees everything.
func privacySettings() []waBinary.Node {
	var cats []waBinary.Node
	for _, name := range []string{"last", "online", "profile", "status", "readreceipts", "groupadd", "calladd"} {
		cats = append(cats, waBinary.Node{Tag: "category", Attrs: waBinary.Attrs{"name": name, "value": "all"}})
	}
	return []waBinary.Node{{Tag: "privacy", Content: cats}}
}

// removeCompanion handles the client's own logout (Client.Logout).
func (s *Server) removeCompanion(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := c.account; a != nil {
		a.removed = true
		s.notify()
		s.logf("%s logged out", a.jid)
	}
}
