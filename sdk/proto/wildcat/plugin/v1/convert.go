package pluginv1

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wildcathub/wildcat/core/event"
)

// EventFromCore renders a core event as its protobuf message. A nil event
// gives nil. Slices and byte slices are shared with ev, not copied.
func EventFromCore(ev *event.Event) *Event {
	if ev == nil {
		return nil
	}
	return &Event{
		Id:          ev.ID,
		Kind:        string(ev.Kind),
		AccountId:   ev.AccountID,
		Timestamp:   timestampFromCore(ev.Timestamp),
		ChatId:      ev.ChatID,
		Source:      string(ev.Source),
		Message:     MessageFromCore(ev.Message),
		Status:      statusFromCore(ev.Status),
		Reaction:    reactionFromCore(ev.Reaction),
		Edit:        editFromCore(ev.Edit),
		Revoke:      revokeFromCore(ev.Revoke),
		Account:     accountFromCore(ev.Account),
		Presence:    presenceFromCore(ev.Presence),
		Typing:      typingFromCore(ev.Typing),
		Group:       groupFromCore(ev.Group),
		History:     historyFromCore(ev.History),
		Tags:        ev.Tags,
		Annotations: ev.Annotations,
	}
}

// EventToCore converts a protobuf event back to the core type. A nil event
// gives nil. Empty repeated fields and maps become nil, as in a decoded
// core event with omitted fields.
func EventToCore(pe *Event) *event.Event {
	if pe == nil {
		return nil
	}
	return &event.Event{
		ID:          pe.GetId(),
		Kind:        event.Kind(pe.GetKind()),
		AccountID:   pe.GetAccountId(),
		Timestamp:   timestampToCore(pe.GetTimestamp()),
		ChatID:      pe.GetChatId(),
		Source:      event.Source(pe.GetSource()),
		Message:     MessageToCore(pe.GetMessage()),
		Status:      statusToCore(pe.GetStatus()),
		Reaction:    reactionToCore(pe.GetReaction()),
		Edit:        editToCore(pe.GetEdit()),
		Revoke:      revokeToCore(pe.GetRevoke()),
		Account:     accountToCore(pe.GetAccount()),
		Presence:    presenceToCore(pe.GetPresence()),
		Typing:      typingToCore(pe.GetTyping()),
		Group:       groupToCore(pe.GetGroup()),
		History:     historyToCore(pe.GetHistory()),
		Tags:        nilIfEmpty(pe.GetTags()),
		Annotations: nilMapIfEmpty(pe.GetAnnotations()),
	}
}

// MessageFromCore renders a core message. A nil message gives nil.
func MessageFromCore(m *event.Message) *Message {
	if m == nil {
		return nil
	}
	pm := &Message{
		AccountId:   m.AccountID,
		MessageId:   m.MessageID,
		ChatId:      m.ChatID,
		From:        m.From,
		FromMe:      m.FromMe,
		Timestamp:   m.Timestamp,
		Type:        string(m.Type),
		Text:        m.Text,
		HasMedia:    m.HasMedia,
		MediaUrl:    m.MediaURL,
		ChatLid:     m.ChatLID,
		ChatPn:      m.ChatPN,
		FromLid:     m.FromLID,
		FromPn:      m.FromPN,
		PushName:    m.PushName,
		Mentions:    m.Mentions,
		Media:       mediaFromCore(m.Media),
		Location:    LocationFromCore(m.Location),
		Contacts:    ContactsFromCore(m.Contacts),
		Poll:        pollFromCore(m.Poll),
		PollVote:    pollVoteFromCore(m.PollVote),
		IsGroup:     m.IsGroup,
		IsBroadcast: m.IsBroadcast,
		IsStatus:    m.IsStatus,
		IsEphemeral: m.IsEphemeral,
		IsViewOnce:  m.IsViewOnce,
		IsForwarded: m.IsForwarded,
		Edited:      m.Edited,
		Revoked:     m.Revoked,
		Raw:         m.Raw,
	}
	if q := m.Quoted; q != nil {
		pm.Quoted = &Quoted{MessageId: q.MessageID, Participant: q.Participant, ChatId: q.ChatID, Type: string(q.Type), Text: q.Text}
	}
	if l := m.LinkPreview; l != nil {
		pm.LinkPreview = &LinkPreview{Url: l.URL, Title: l.Title, Description: l.Description}
	}
	return pm
}

// MessageToCore converts a protobuf message back. A nil message gives nil.
func MessageToCore(pm *Message) *event.Message {
	if pm == nil {
		return nil
	}
	m := &event.Message{
		AccountID:   pm.GetAccountId(),
		MessageID:   pm.GetMessageId(),
		ChatID:      pm.GetChatId(),
		From:        pm.GetFrom(),
		FromMe:      pm.GetFromMe(),
		Timestamp:   pm.GetTimestamp(),
		Type:        event.MessageType(pm.GetType()),
		Text:        pm.GetText(),
		HasMedia:    pm.GetHasMedia(),
		MediaURL:    pm.GetMediaUrl(),
		ChatLID:     pm.GetChatLid(),
		ChatPN:      pm.GetChatPn(),
		FromLID:     pm.GetFromLid(),
		FromPN:      pm.GetFromPn(),
		PushName:    pm.GetPushName(),
		Mentions:    nilIfEmpty(pm.GetMentions()),
		Media:       mediaToCore(pm.GetMedia()),
		Location:    LocationToCore(pm.GetLocation()),
		Contacts:    ContactsToCore(pm.GetContacts()),
		Poll:        pollToCore(pm.GetPoll()),
		PollVote:    pollVoteToCore(pm.GetPollVote()),
		IsGroup:     pm.GetIsGroup(),
		IsBroadcast: pm.GetIsBroadcast(),
		IsStatus:    pm.GetIsStatus(),
		IsEphemeral: pm.GetIsEphemeral(),
		IsViewOnce:  pm.GetIsViewOnce(),
		IsForwarded: pm.GetIsForwarded(),
		Edited:      pm.GetEdited(),
		Revoked:     pm.GetRevoked(),
		Raw:         nilIfEmpty(pm.GetRaw()),
	}
	if q := pm.GetQuoted(); q != nil {
		m.Quoted = &event.Quoted{MessageID: q.GetMessageId(), Participant: q.GetParticipant(), ChatID: q.GetChatId(), Type: event.MessageType(q.GetType()), Text: q.GetText()}
	}
	if l := pm.GetLinkPreview(); l != nil {
		m.LinkPreview = &event.LinkPreview{URL: l.GetUrl(), Title: l.GetTitle(), Description: l.GetDescription()}
	}
	return m
}

// LocationFromCore renders a core location. A nil location gives nil.
func LocationFromCore(l *event.Location) *Location {
	if l == nil {
		return nil
	}
	return &Location{
		Latitude: l.Latitude, Longitude: l.Longitude, Name: l.Name, Address: l.Address, Url: l.URL, Live: l.Live,
		AccuracyMeters: l.AccuracyMeters, SpeedMps: l.SpeedMps, Heading: l.Heading, Sequence: l.Sequence, Caption: l.Caption,
	}
}

// LocationToCore converts a protobuf location back. A nil location gives nil.
func LocationToCore(l *Location) *event.Location {
	if l == nil {
		return nil
	}
	return &event.Location{
		Latitude: l.GetLatitude(), Longitude: l.GetLongitude(), Name: l.GetName(), Address: l.GetAddress(), URL: l.GetUrl(), Live: l.GetLive(),
		AccuracyMeters: l.GetAccuracyMeters(), SpeedMps: l.GetSpeedMps(), Heading: l.GetHeading(), Sequence: l.GetSequence(), Caption: l.GetCaption(),
	}
}

// ContactsFromCore renders contact cards. An empty slice gives nil.
func ContactsFromCore(cs []event.Contact) []*Contact {
	if len(cs) == 0 {
		return nil
	}
	out := make([]*Contact, len(cs))
	for i, c := range cs {
		out[i] = &Contact{DisplayName: c.DisplayName, Vcard: c.VCard}
	}
	return out
}

// ContactsToCore converts contact cards back. An empty slice gives nil.
func ContactsToCore(cs []*Contact) []event.Contact {
	if len(cs) == 0 {
		return nil
	}
	out := make([]event.Contact, len(cs))
	for i, c := range cs {
		out[i] = event.Contact{DisplayName: c.GetDisplayName(), VCard: c.GetVcard()}
	}
	return out
}

func mediaFromCore(m *event.Media) *Media {
	if m == nil {
		return nil
	}
	return &Media{
		Mimetype: m.Mimetype, Size: m.Size, Sha256: m.SHA256, FileEncSha256: m.FileEncSHA256, MediaKey: m.MediaKey,
		MediaKeyTimestamp: m.MediaKeyTimestamp, DirectPath: m.DirectPath, Url: m.URL, Filename: m.Filename, Caption: m.Caption,
		DurationSeconds: m.DurationSeconds, Width: m.Width, Height: m.Height, Gif: m.GIF, Ptv: m.PTV, Voice: m.Voice,
		PageCount: m.PageCount, IsAnimated: m.IsAnimated,
	}
}

func mediaToCore(m *Media) *event.Media {
	if m == nil {
		return nil
	}
	return &event.Media{
		Mimetype: m.GetMimetype(), Size: m.GetSize(), SHA256: m.GetSha256(), FileEncSHA256: m.GetFileEncSha256(), MediaKey: nilIfEmpty(m.GetMediaKey()),
		MediaKeyTimestamp: m.GetMediaKeyTimestamp(), DirectPath: m.GetDirectPath(), URL: m.GetUrl(), Filename: m.GetFilename(), Caption: m.GetCaption(),
		DurationSeconds: m.GetDurationSeconds(), Width: m.GetWidth(), Height: m.GetHeight(), GIF: m.GetGif(), PTV: m.GetPtv(), Voice: m.GetVoice(),
		PageCount: m.GetPageCount(), IsAnimated: m.GetIsAnimated(),
	}
}

func pollFromCore(p *event.Poll) *Poll {
	if p == nil {
		return nil
	}
	pp := &Poll{Name: p.Name, SelectableCount: p.SelectableCount}
	for _, o := range p.Options {
		pp.Options = append(pp.Options, &PollOption{Name: o.Name, Hash: o.Hash})
	}
	return pp
}

func pollToCore(p *Poll) *event.Poll {
	if p == nil {
		return nil
	}
	cp := &event.Poll{Name: p.GetName(), SelectableCount: p.GetSelectableCount()}
	for _, o := range p.GetOptions() {
		cp.Options = append(cp.Options, event.PollOption{Name: o.GetName(), Hash: o.GetHash()})
	}
	return cp
}

func pollVoteFromCore(v *event.PollVote) *PollVote {
	if v == nil {
		return nil
	}
	return &PollVote{
		PollMessageId: v.PollMessageID, PollChatId: v.PollChatID, PollCreator: v.PollCreator, PollFromMe: v.PollFromMe,
		SelectedOptions: v.SelectedOptions, Decrypted: v.Decrypted, EncPayload: v.EncPayload, EncIv: v.EncIV,
		SenderTimestampMs: v.SenderTimestampMs,
	}
}

func pollVoteToCore(v *PollVote) *event.PollVote {
	if v == nil {
		return nil
	}
	return &event.PollVote{
		PollMessageID: v.GetPollMessageId(), PollChatID: v.GetPollChatId(), PollCreator: v.GetPollCreator(), PollFromMe: v.GetPollFromMe(),
		SelectedOptions: nilIfEmpty(v.GetSelectedOptions()), Decrypted: v.GetDecrypted(), EncPayload: nilIfEmpty(v.GetEncPayload()),
		EncIV: nilIfEmpty(v.GetEncIv()), SenderTimestampMs: v.GetSenderTimestampMs(),
	}
}

func statusFromCore(s *event.Status) *Status {
	if s == nil {
		return nil
	}
	return &Status{MessageId: s.MessageID, Status: string(s.Status), From: s.From, FromPn: s.FromPN, ChatId: s.ChatID, Self: s.Self, MessageSender: s.MessageSender}
}

func statusToCore(s *Status) *event.Status {
	if s == nil {
		return nil
	}
	return &event.Status{MessageID: s.GetMessageId(), Status: event.MessageStatus(s.GetStatus()), From: s.GetFrom(), FromPN: s.GetFromPn(), ChatID: s.GetChatId(), Self: s.GetSelf(), MessageSender: s.GetMessageSender()}
}

func reactionFromCore(r *event.Reaction) *Reaction {
	if r == nil {
		return nil
	}
	return &Reaction{TargetId: r.TargetID, TargetChatId: r.TargetChatID, TargetSender: r.TargetSender, TargetFromMe: r.TargetFromMe, Emoji: r.Emoji, Removed: r.Removed, SenderTimestampMs: r.SenderTimestampMs}
}

func reactionToCore(r *Reaction) *event.Reaction {
	if r == nil {
		return nil
	}
	return &event.Reaction{TargetID: r.GetTargetId(), TargetChatID: r.GetTargetChatId(), TargetSender: r.GetTargetSender(), TargetFromMe: r.GetTargetFromMe(), Emoji: r.GetEmoji(), Removed: r.GetRemoved(), SenderTimestampMs: r.GetSenderTimestampMs()}
}

func editFromCore(e *event.Edit) *Edit {
	if e == nil {
		return nil
	}
	return &Edit{TargetId: e.TargetID, Text: e.Text, Message: MessageFromCore(e.Message), EditedAtMs: e.EditedAtMs}
}

func editToCore(e *Edit) *event.Edit {
	if e == nil {
		return nil
	}
	return &event.Edit{TargetID: e.GetTargetId(), Text: e.GetText(), Message: MessageToCore(e.GetMessage()), EditedAtMs: e.GetEditedAtMs()}
}

func revokeFromCore(r *event.Revoke) *Revoke {
	if r == nil {
		return nil
	}
	return &Revoke{TargetId: r.TargetID, TargetSender: r.TargetSender, By: r.By, Admin: r.Admin}
}

func revokeToCore(r *Revoke) *event.Revoke {
	if r == nil {
		return nil
	}
	return &event.Revoke{TargetID: r.GetTargetId(), TargetSender: r.GetTargetSender(), By: r.GetBy(), Admin: r.GetAdmin()}
}

func accountFromCore(a *event.AccountState) *AccountState {
	if a == nil {
		return nil
	}
	return &AccountState{State: string(a.State), QrCode: a.QRCode, ExpiresAt: timestampPtrFromCore(a.ExpiresAt), PairingCode: a.PairingCode, Reason: a.Reason, Jid: a.JID, PushName: a.PushName}
}

func accountToCore(a *AccountState) *event.AccountState {
	if a == nil {
		return nil
	}
	return &event.AccountState{State: event.AccountStatus(a.GetState()), QRCode: a.GetQrCode(), ExpiresAt: timestampPtrToCore(a.GetExpiresAt()), PairingCode: a.GetPairingCode(), Reason: a.GetReason(), JID: a.GetJid(), PushName: a.GetPushName()}
}

func presenceFromCore(p *event.Presence) *Presence {
	if p == nil {
		return nil
	}
	return &Presence{Jid: p.JID, Available: p.Available, LastSeen: timestampPtrFromCore(p.LastSeen)}
}

func presenceToCore(p *Presence) *event.Presence {
	if p == nil {
		return nil
	}
	return &event.Presence{JID: p.GetJid(), Available: p.GetAvailable(), LastSeen: timestampPtrToCore(p.GetLastSeen())}
}

func typingFromCore(t *event.Typing) *Typing {
	if t == nil {
		return nil
	}
	return &Typing{ChatId: t.ChatID, From: t.From, FromPn: t.FromPN, State: string(t.State)}
}

func typingToCore(t *Typing) *event.Typing {
	if t == nil {
		return nil
	}
	return &event.Typing{ChatID: t.GetChatId(), From: t.GetFrom(), FromPN: t.GetFromPn(), State: event.TypingState(t.GetState())}
}

func groupFromCore(g *event.GroupUpdate) *GroupUpdate {
	if g == nil {
		return nil
	}
	return &GroupUpdate{
		Jid: g.JID, Actor: g.Actor, ActorPn: g.ActorPN, ActorLid: g.ActorLID, Name: g.Name, Topic: g.Topic, TopicDeleted: g.TopicDeleted,
		Locked: g.Locked, Announce: g.Announce, EphemeralSeconds: g.EphemeralSeconds, Deleted: g.Deleted,
		InviteLink: g.InviteLink, JoinReason: g.JoinReason,
		PictureId: g.PictureID, PictureRemoved: g.PictureRemoved, JoinApproval: g.JoinApproval,
		Added: g.Added, Left: g.Left, Removed: g.Removed, Promoted: g.Promoted, Demoted: g.Demoted,
		Participants: participantsFromCore(g.Participants), Self: g.Self, Info: groupInfoFromCore(g.Info),
	}
}

func groupToCore(g *GroupUpdate) *event.GroupUpdate {
	if g == nil {
		return nil
	}
	return &event.GroupUpdate{
		JID: g.GetJid(), Actor: g.GetActor(), ActorPN: g.GetActorPn(), ActorLID: g.GetActorLid(), Name: g.GetName(), Topic: g.GetTopic(), TopicDeleted: g.GetTopicDeleted(),
		Locked: g.Locked, Announce: g.Announce, EphemeralSeconds: g.EphemeralSeconds, Deleted: g.GetDeleted(),
		InviteLink: g.GetInviteLink(), JoinReason: g.GetJoinReason(),
		PictureID: g.GetPictureId(), PictureRemoved: g.GetPictureRemoved(), JoinApproval: g.JoinApproval,
		Added: nilIfEmpty(g.GetAdded()), Left: nilIfEmpty(g.GetLeft()), Removed: nilIfEmpty(g.GetRemoved()),
		Promoted: nilIfEmpty(g.GetPromoted()), Demoted: nilIfEmpty(g.GetDemoted()),
		Participants: participantsToCore(g.GetParticipants()), Self: g.GetSelf(), Info: groupInfoToCore(g.GetInfo()),
	}
}

func participantsFromCore(ps []event.GroupParticipant) []*GroupParticipant {
	if len(ps) == 0 {
		return nil
	}
	out := make([]*GroupParticipant, len(ps))
	for i, p := range ps {
		out[i] = &GroupParticipant{Jid: p.JID, Pn: p.PN, Lid: p.LID, Role: string(p.Role)}
	}
	return out
}

func participantsToCore(ps []*GroupParticipant) []event.GroupParticipant {
	if len(ps) == 0 {
		return nil
	}
	out := make([]event.GroupParticipant, len(ps))
	for i, p := range ps {
		out[i] = event.GroupParticipant{JID: p.GetJid(), PN: p.GetPn(), LID: p.GetLid(), Role: event.GroupRole(p.GetRole())}
	}
	return out
}

func groupInfoFromCore(g *event.GroupInfo) *GroupInfo {
	if g == nil {
		return nil
	}
	return &GroupInfo{
		Jid: g.JID, Name: g.Name, Topic: g.Topic, Owner: g.Owner, OwnerPn: g.OwnerPN, CreatedAt: timestampFromCore(g.CreatedAt),
		Locked: g.Locked, Announce: g.Announce, JoinApproval: g.JoinApproval, EphemeralSeconds: g.EphemeralSeconds,
		PictureId: g.PictureID, Community: g.Community, Participants: participantsFromCore(g.Participants),
	}
}

func groupInfoToCore(g *GroupInfo) *event.GroupInfo {
	if g == nil {
		return nil
	}
	ps := participantsToCore(g.GetParticipants())
	if ps == nil {
		// GroupInfo lists its participants always, none as [].
		ps = []event.GroupParticipant{}
	}
	return &event.GroupInfo{
		JID: g.GetJid(), Name: g.GetName(), Topic: g.GetTopic(), Owner: g.GetOwner(), OwnerPN: g.GetOwnerPn(), CreatedAt: timestampToCore(g.GetCreatedAt()),
		Locked: g.GetLocked(), Announce: g.GetAnnounce(), JoinApproval: g.GetJoinApproval(), EphemeralSeconds: g.GetEphemeralSeconds(),
		PictureID: g.GetPictureId(), Community: g.GetCommunity(), Participants: ps,
	}
}

func historyFromCore(h *event.HistorySync) *HistorySync {
	if h == nil {
		return nil
	}
	return &HistorySync{Type: h.Type, Progress: h.Progress, ChunkOrder: h.ChunkOrder, ConversationCount: int64(h.ConversationCount), MessageCount: int64(h.MessageCount)}
}

func historyToCore(h *HistorySync) *event.HistorySync {
	if h == nil {
		return nil
	}
	return &event.HistorySync{Type: h.GetType(), Progress: h.GetProgress(), ChunkOrder: h.GetChunkOrder(), ConversationCount: int(h.GetConversationCount()), MessageCount: int(h.GetMessageCount())}
}

// timestampFromCore leaves the zero time unset, so "no time" survives the
// trip instead of becoming year 1.
func timestampFromCore(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// timestampToCore returns UTC times; an unset timestamp is the zero time.
func timestampToCore(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func timestampPtrFromCore(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

func timestampPtrToCore(ts *timestamppb.Timestamp) *time.Time {
	if ts == nil {
		return nil
	}
	t := ts.AsTime()
	return &t
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func nilMapIfEmpty[K comparable, V any](m map[K]V) map[K]V {
	if len(m) == 0 {
		return nil
	}
	return m
}
