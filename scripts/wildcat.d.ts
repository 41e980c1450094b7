// Types of the Wildcat rule API, for editor completion and checking.
// A rule file can opt in with, on its first lines:
//   /// <reference path="./wildcat.d.ts" />
//   // @ts-check
//
// `msg` is the event exactly as webhooks receive it (the JSON rendering of
// core/event.Event): absent optional fields are undefined, times are RFC 3339
// strings, bytes are base64. It is read-only.

declare namespace Wildcat {
  type Kind =
    | "message.received" | "message.sent" | "message.status" | "message.reaction"
    | "message.edited" | "message.revoked"
    | "account.qr" | "account.pairing_code" | "account.connected"
    | "account.disconnected" | "account.logged_out"
    | "presence.update" | "chat.typing" | "group.update" | "history.sync";

  /** An exact kind, "family.*", a bare family ("message" = "message.*"), or "*". */
  type KindPattern = Kind | "*" | "message" | "message.*" | "account" | "account.*"
    | "presence" | "presence.*" | "chat" | "chat.*" | "group" | "group.*" | "history" | "history.*";

  type Source = "phone" | "api" | "rule" | "plugin" | "history";

  type MessageType =
    | "text" | "image" | "video" | "gif" | "ptv" | "audio" | "voice" | "document" | "sticker"
    | "location" | "live_location" | "contact" | "contacts" | "reaction" | "poll" | "poll_vote"
    | "edit" | "revoke" | "protocol" | "unknown";

  interface Event {
    readonly id: string;
    readonly kind: Kind;
    readonly accountId: string;
    /** RFC 3339. */
    readonly timestamp: string;
    readonly chatId?: string;
    readonly source: Source;
    readonly message?: Message;
    readonly status?: Status;
    readonly reaction?: Reaction;
    readonly edit?: Edit;
    readonly revoke?: Revoke;
    readonly account?: AccountState;
    readonly presence?: Presence;
    readonly typing?: Typing;
    readonly group?: GroupUpdate;
    readonly history?: HistorySync;
    readonly tags?: readonly string[];
    readonly annotations?: Readonly<Record<string, string>>;
  }

  interface Message {
    readonly accountId: string;
    readonly messageId: string;
    /** JID: "123@s.whatsapp.net", "456@lid", "789-123@g.us". */
    readonly chatId: string;
    readonly from: string;
    readonly fromMe: boolean;
    /** Unix seconds. */
    readonly timestamp: number;
    readonly type: MessageType;
    /** The text, or the caption of media. */
    readonly text?: string;
    readonly hasMedia: boolean;
    readonly mediaUrl?: string;
    readonly chatLid?: string;
    readonly chatPn?: string;
    readonly fromLid?: string;
    readonly fromPn?: string;
    readonly pushName?: string;
    readonly quoted?: Quoted;
    readonly mentions?: readonly string[];
    readonly media?: Media;
    readonly location?: Location;
    readonly contacts?: readonly Contact[];
    readonly poll?: Poll;
    readonly pollVote?: PollVote;
    readonly linkPreview?: { readonly url: string; readonly title?: string; readonly description?: string };
    readonly isGroup: boolean;
    readonly isBroadcast: boolean;
    readonly isStatus: boolean;
    readonly isEphemeral: boolean;
    readonly isViewOnce: boolean;
    readonly isForwarded: boolean;
    readonly edited: boolean;
    readonly revoked: boolean;
    /** The WhatsApp protobuf, base64. */
    readonly raw?: string;
  }

  interface Quoted {
    readonly messageId: string;
    readonly participant?: string;
    readonly chatId?: string;
    readonly type?: MessageType;
    readonly text?: string;
  }

  interface Media {
    readonly mimetype?: string;
    readonly size?: number;
    readonly sha256?: string;
    readonly fileEncSha256?: string;
    readonly mediaKey?: string;
    readonly mediaKeyTimestamp?: number;
    readonly directPath?: string;
    readonly url?: string;
    readonly filename?: string;
    readonly caption?: string;
    readonly durationSeconds?: number;
    readonly width?: number;
    readonly height?: number;
    readonly gif?: boolean;
    readonly ptv?: boolean;
    readonly voice?: boolean;
    readonly pageCount?: number;
    readonly isAnimated?: boolean;
  }

  interface Location {
    readonly lat: number;
    readonly lng: number;
    readonly name?: string;
    readonly address?: string;
    readonly url?: string;
    readonly live?: boolean;
    readonly accuracy?: number;
    readonly speed?: number;
    readonly heading?: number;
    readonly sequence?: number;
    readonly caption?: string;
  }

  interface Contact { readonly displayName: string; readonly vcard: string }

  interface Poll {
    readonly name: string;
    readonly options: readonly { readonly name: string; readonly hash: string }[];
    readonly selectableCount: number;
  }

  interface PollVote {
    readonly pollMessageId: string;
    readonly pollChatId?: string;
    readonly pollCreator?: string;
    readonly pollFromMe?: boolean;
    readonly selectedOptions?: readonly string[];
    readonly decrypted: boolean;
    readonly senderTimestampMs?: number;
  }

  interface Status {
    readonly messageId: string;
    readonly status: "sent" | "delivered" | "read" | "played";
    readonly from?: string;
    readonly fromPn?: string;
    readonly chatId: string;
    readonly self?: boolean;
    readonly messageSender?: string;
  }

  interface Reaction {
    readonly targetId: string;
    readonly targetChatId?: string;
    readonly targetSender?: string;
    readonly targetFromMe: boolean;
    /** "" when the reaction was removed. */
    readonly emoji: string;
    readonly removed: boolean;
    readonly senderTimestampMs?: number;
  }

  interface Edit { readonly targetId: string; readonly text: string; readonly message?: Message; readonly editedAtMs?: number }
  interface Revoke { readonly targetId: string; readonly targetSender?: string; readonly by: string; readonly admin: boolean }

  interface AccountState {
    readonly state: "pairing" | "connecting" | "connected" | "disconnected" | "logged_out";
    readonly qrCode?: string;
    readonly expiresAt?: string;
    readonly pairingCode?: string;
    readonly reason?: string;
    readonly jid?: string;
    readonly pushName?: string;
  }

  interface Presence { readonly jid: string; readonly available: boolean; readonly lastSeen?: string }
  interface Typing { readonly chatId: string; readonly from: string; readonly fromPn?: string; readonly state: "composing" | "recording" | "paused" }

  interface GroupUpdate {
    readonly jid: string;
    readonly actor?: string;
    readonly actorPn?: string;
    readonly name?: string;
    readonly topic?: string;
    readonly topicDeleted?: boolean;
    readonly locked?: boolean;
    readonly announce?: boolean;
    readonly ephemeralSeconds?: number;
    readonly deleted?: boolean;
    readonly inviteLink?: string;
    readonly joinReason?: string;
    readonly actorLid?: string;
    readonly pictureId?: string;
    readonly pictureRemoved?: boolean;
    readonly joinApproval?: boolean;
    /** Added by actor, or joined by link or approved request (joinReason says which). */
    readonly added?: readonly string[];
    /** Left on their own. */
    readonly left?: readonly string[];
    /** Removed by actor. */
    readonly removed?: readonly string[];
    readonly promoted?: readonly string[];
    readonly demoted?: readonly string[];
    /** The phone-number and LID forms of every JID named above, where known. */
    readonly participants?: readonly GroupParticipant[];
    /** How this account's own membership changed; with added or joined, info is the whole group. */
    readonly self?: "added" | "joined" | "removed" | "left";
    readonly info?: GroupInfo;
  }

  interface GroupParticipant {
    /** As WhatsApp addresses them in the group (phone number or LID). */
    readonly jid: string;
    readonly pn?: string;
    readonly lid?: string;
    readonly role?: "member" | "admin" | "superadmin";
  }

  /** A group as it is now (ctx.group(), GroupUpdate.info). */
  interface GroupInfo {
    readonly jid: string;
    /** The subject. */
    readonly name: string;
    /** The description. */
    readonly topic?: string;
    readonly owner?: string;
    readonly ownerPn?: string;
    readonly createdAt?: string;
    /** Only admins edit the info. */
    readonly locked: boolean;
    /** Only admins send. */
    readonly announce: boolean;
    /** Joining needs an admin's approval. */
    readonly joinApproval: boolean;
    readonly pictureId?: string;
    readonly participants: readonly GroupParticipant[];
  }

  interface HistorySync {
    readonly type: string;
    readonly progress: number;
    readonly chunkOrder: number;
    readonly conversationCount: number;
    readonly messageCount: number;
  }

  /** Exactly one of url (fetched from a host on the rule's http.allow list), data (base64) or mediaId (stored media). */
  type MediaSource = { url: string } | { data: string } | { mediaId: string };
  type OutgoingMedia = MediaSource & {
    /** Required with data; otherwise taken from the response or the store. */
    mimetype?: string;
    /** Default from the mimetype: image/webp → sticker, image/* → image, video/* → video, audio/* → audio, else document. */
    kind?: "image" | "video" | "gif" | "audio" | "voice" | "document" | "sticker";
    filename?: string;
    seconds?: number;
  };

  /** One of text, media (+caption), location or contacts. */
  interface Outgoing {
    text?: string;
    media?: OutgoingMedia;
    caption?: string;
    location?: { lat: number; lng: number; name?: string; address?: string; url?: string };
    contacts?: { displayName: string; vcard: string }[];
    /** JIDs or phone numbers mentioned in the text or caption. */
    mentions?: string[];
    /** ctx.reply only: quote the event's message. Default false. */
    quote?: boolean;
  }

  type SendOptions = Pick<Outgoing, "mentions" | "quote">;

  /** A JSON value: what ctx.kv stores. */
  type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

  /** "10m", "36h", "500ms", or a number of seconds. */
  type TTL = { ttl?: string | number };

  interface KV {
    /** undefined when absent or expired. */
    get(key: string): JSONValue | undefined;
    set(key: string, value: JSONValue, options?: TTL): void;
    /** Adds `by` (default 1); absent counts as 0. A ttl applies when the counter is created (a fixed window). */
    incr(key: string, by?: number, options?: TTL): number;
    incr(key: string, options: TTL): number;
    /** Whether a live value was there. */
    del(key: string): boolean;
  }

  interface Now {
    /** RFC 3339 with the zone's offset. */
    iso: string;
    /** YYYY-MM-DD in the zone. */
    date: string;
    weekday: "Mon" | "Tue" | "Wed" | "Thu" | "Fri" | "Sat" | "Sun";
    hour: number;
    minute: number;
    unix: number;
    zone: string;
  }

  interface FetchResponse {
    status: number;
    ok: boolean;
    /** Lower-case names. */
    headers: Record<string, string>;
    body: string;
    json(): any;
  }

  interface Log {
    info(...args: any[]): void;
    warn(...args: any[]): void;
    error(...args: any[]): void;
    debug(...args: any[]): void;
  }

  interface Ctx {
    /** The rule's name: its file name without .js. */
    readonly rule: string;
    /** Send to the event's chat. Does not quote unless {quote: true}. */
    reply(content: string | Outgoing, options?: SendOptions): void;
    /** Send to another chat: a JID or a phone number ("+49 30 1234567"). */
    send(to: string, content: string | Outgoing, options?: Pick<Outgoing, "mentions">): void;
    /** React to the event's message; "" removes the reaction. */
    react(emoji: string): void;
    markRead(): void;
    /** Stop the event: no later rule or stage sees it (it stays stored). */
    drop(): void;
    tag(...tags: (string | string[])[]): void;
    annotate(key: string, value: string | number | boolean): void;
    /** Deliver the event only to these sinks. */
    route(...sinks: (string | string[])[]): void;
    /** The account this event belongs to and its own JIDs (phone number and LID forms). */
    self(): { id: string; jids: string[] };
    /** The group of the event's chat as it is now (read from the account's session), or null outside groups. */
    group(): GroupInfo | null;
    /** This rule's own key-value store, persisted in MongoDB. */
    readonly kv: KV;
    readonly log: Log;
    readonly time: {
      /** tz: an IANA zone; default the rule's config timezone, else UTC. */
      now(tz?: string): Now;
      /** "Mon-Fri 09:00-18:00", "Mon-Fri 09:00-12:00,13:00-18:00; Sat 10:00-14:00", "daily 22:00-06:00". */
      within(spec: string, tz?: string): boolean;
    };
    /** This rule's block from the rules stage's config (read-only). */
    readonly config: Readonly<Record<string, any>>;
    readonly http: {
      /** Only hosts on the config's http.allow list; ends at the handler's deadline at the latest. */
      fetch(url: string, options?: { method?: string; headers?: Record<string, string>; body?: string | JSONValue; timeout?: string | number }): FetchResponse;
    };
  }

  type Handler = (msg: Event, ctx: Ctx) => void;

  /** The kinds whose events always carry a message (and a chat). */
  type MessageKind = "message.received" | "message.sent" | "message.reaction" | "message.edited" | "message.revoked";
  type MessageEvent = Event & { readonly message: Message; readonly chatId: string };
}

/** Register a handler, at the top level of the rule file. */
declare function on(kind: Wildcat.MessageKind, handler: (msg: Wildcat.MessageEvent, ctx: Wildcat.Ctx) => void): void;
declare function on(kind: Wildcat.KindPattern, handler: Wildcat.Handler): void;

/** console.log/info/debug/warn/error go to the daemon's log, like ctx.log. */
declare const console: Wildcat.Log & { log(...args: any[]): void };
