package api

import (
	"net/http"
	"path/filepath"
	"time"

	"github.com/wildcathub/wildcat/core/apikeys"
)

// routes lists every route the API serves. Components that arrive later
// (accounts, messages, webhooks, pipeline) add their handlers here, so the
// whole surface reads in one place.
func (s *Server) routes(opts Options) {
	// Each route declares the scope it needs (Needs) or that it is Public;
	// TestEveryRouteNeedsAKey walks the router and fails on a route that
	// declares neither.
	(&Route{s, s.root.Handle("/healthz", s.handle(s.healthz)).Methods(http.MethodGet, http.MethodHead)}).Public()
	(&Route{s, s.root.Handle("/readyz", s.handle(s.readyz)).Methods(http.MethodGet, http.MethodHead)}).Public()

	if opts.Accounts != nil {
		a := &accountRoutes{accounts: opts.Accounts, sim: opts.Sim, messages: opts.Messages, cluster: opts.Cluster}
		s.Handle("/accounts", a.create, http.MethodPost).Needs(apikeys.ScopeAccountsWrite)
		s.Handle("/accounts", a.list, http.MethodGet).Needs(apikeys.ScopeAccountsRead).Filtered()
		s.Handle("/accounts/{id}", a.get, http.MethodGet).Needs(apikeys.ScopeAccountsRead)
		s.Handle("/accounts/{id}", a.update, http.MethodPatch).Needs(apikeys.ScopeAccountsWrite)
		s.Handle("/accounts/{id}", a.delete, http.MethodDelete).Needs(apikeys.ScopeAccountsWrite)
		s.Handle("/accounts/{id}/connect", a.connect, http.MethodPost).Needs(apikeys.ScopeAccountsWrite)
		s.Handle("/accounts/{id}/logout", a.logout, http.MethodPost).Needs(apikeys.ScopeAccountsWrite)
		s.Handle("/accounts/{id}/qr", a.qr, http.MethodGet).Needs(apikeys.ScopeAccountsWrite)
		s.Handle("/accounts/{id}/pairing-code", a.pairingCode, http.MethodPost).Needs(apikeys.ScopeAccountsWrite)
		if opts.Sim != nil {
			s.Handle("/accounts/{id}/sim/inbound", a.simInbound, http.MethodPost).Needs(apikeys.ScopeAccountsWrite)
		}
	}

	if opts.Cluster != nil {
		in := &instanceRoutes{cluster: opts.Cluster}
		s.Handle("/instances", in.list, http.MethodGet).Needs(apikeys.ScopeAdmin)
	}

	if opts.Channels != nil {
		ch := &channelRoutes{source: opts.Channels}
		s.Handle("/accounts/{id}/channels", ch.list, http.MethodGet).Needs(apikeys.ScopeMessagesRead)
		s.Handle("/accounts/{id}/channels/{jid}/messages", ch.messages, http.MethodGet).Needs(apikeys.ScopeMessagesRead)
	}

	if opts.Groups != nil {
		g := &groupRoutes{groups: opts.Groups}
		read, manage := apikeys.ScopeGroupsRead, apikeys.ScopeGroupsManage
		s.Handle("/accounts/{id}/groups", g.list, http.MethodGet).Needs(read)
		s.Handle("/accounts/{id}/groups", g.create, http.MethodPost).Needs(manage)
		// join and invites/… before {groupId}: neither is a group.
		s.Handle("/accounts/{id}/groups/join", g.join, http.MethodPost).Needs(manage)
		s.Handle("/accounts/{id}/groups/invites/{code}", g.preview, http.MethodGet).Needs(read)
		s.Handle("/accounts/{id}/groups/{groupId}", g.get, http.MethodGet).Needs(read)
		s.Handle("/accounts/{id}/groups/{groupId}", g.update, http.MethodPatch).Needs(manage)
		s.Handle("/accounts/{id}/groups/{groupId}/leave", g.leave, http.MethodPost).Needs(manage)
		s.Handle("/accounts/{id}/groups/{groupId}/picture", g.setPicture, http.MethodPut).Needs(manage)
		s.Handle("/accounts/{id}/groups/{groupId}/picture", g.deletePicture, http.MethodDelete).Needs(manage)
		s.Handle("/accounts/{id}/groups/{groupId}/participants", g.participants, http.MethodPost).Needs(manage)
		s.Handle("/accounts/{id}/groups/{groupId}/invite-link", g.inviteLink(false), http.MethodGet).Needs(manage)
		s.Handle("/accounts/{id}/groups/{groupId}/invite-link/reset", g.inviteLink(true), http.MethodPost).Needs(manage)
		s.Handle("/accounts/{id}/groups/{groupId}/requests", g.requests, http.MethodGet).Needs(manage)
		s.Handle("/accounts/{id}/groups/{groupId}/requests", g.answerRequests, http.MethodPost).Needs(manage)
	}

	if opts.Media != nil {
		uploadLimit, sendLimit := mediaBodyLimit(opts.Media.MaxBytes(), s.maxBody)
		md := &mediaRoutes{store: opts.Media}
		s.HandleBody("/media", uploadLimit, uploadBody, md.upload, http.MethodPost).Needs(apikeys.ScopeMessagesSend).Filtered()
		if opts.MediaArchive != nil {
			ma := &mediaArchiveRoutes{archiver: opts.MediaArchive, accounts: opts.Accounts}
			s.Handle("/media/archive", ma.backfill, http.MethodPost).Needs(apikeys.ScopeAdmin)
		}
		s.Handle("/media/{mediaId}", md.download, http.MethodGet, http.MethodHead).Needs(apikeys.ScopeMessagesRead)

		if opts.Accounts != nil && opts.Messages != nil && opts.Sender != nil {
			m := &messageRoutes{accounts: opts.Accounts, store: opts.Messages, sender: opts.Sender, media: opts.Media, fetcher: opts.Fetcher, maxJSON: s.maxBody}
			s.HandleLimit("/accounts/{id}/messages", sendLimit, s.idempotent(opts.Idempotency, m.send), http.MethodPost).Needs(apikeys.ScopeMessagesSend)
			s.Handle("/accounts/{id}/messages", m.list, http.MethodGet).Needs(apikeys.ScopeMessagesRead)
			s.Handle("/accounts/{id}/messages/{messageId}", m.get, http.MethodGet).Needs(apikeys.ScopeMessagesRead)
			s.Handle("/accounts/{id}/chats", m.chats, http.MethodGet).Needs(apikeys.ScopeMessagesRead)
			s.Handle("/accounts/{id}/chats/{chatId}", m.chat, http.MethodGet).Needs(apikeys.ScopeMessagesRead)
		}
	}

	if opts.Accounts != nil && opts.Traces != nil {
		tr := &traceRoutes{accounts: opts.Accounts, traces: opts.Traces, deliveries: opts.Deliveries}
		s.Handle("/accounts/{id}/messages/{messageId}/trace", tr.get, http.MethodGet).Needs(apikeys.ScopeMessagesRead)
	}

	if opts.Pipeline != nil {
		p := &pipelineRoutes{engine: opts.Pipeline, reloader: opts.ConfigReloader}
		for _, d := range opts.RuleDirs {
			if abs, err := filepath.Abs(d); err == nil {
				p.ruleDirs = append(p.ruleDirs, abs)
			}
		}
		s.Handle("/pipeline", p.get, http.MethodGet).Needs(apikeys.ScopeRulesManage)
		s.Handle("/pipeline/reload", p.reload, http.MethodPost).Needs(apikeys.ScopeRulesManage)
	}
	if opts.Deliveries != nil {
		dl := &deliveryRoutes{outbox: opts.Deliveries}
		s.Handle("/deliveries", dl.list, http.MethodGet).Needs(apikeys.ScopeWebhooksManage)
		// replay before {id}: "replay" is not a job id.
		s.Handle("/deliveries/replay", dl.replay, http.MethodPost).Needs(apikeys.ScopeWebhooksManage)
		s.Handle("/deliveries/{id}", dl.get, http.MethodGet).Needs(apikeys.ScopeWebhooksManage)
		s.Handle("/deliveries/{id}/retry", dl.retry, http.MethodPost).Needs(apikeys.ScopeWebhooksManage)
	}
	if opts.Webhooks != nil {
		wh := &webhookRoutes{reg: opts.Webhooks}
		s.Handle("/webhooks", wh.create, http.MethodPost).Needs(apikeys.ScopeWebhooksManage)
		s.Handle("/webhooks", wh.list, http.MethodGet).Needs(apikeys.ScopeWebhooksManage)
		s.Handle("/webhooks/{id}", wh.get, http.MethodGet).Needs(apikeys.ScopeWebhooksManage)
		s.Handle("/webhooks/{id}", wh.update, http.MethodPatch).Needs(apikeys.ScopeWebhooksManage)
		s.Handle("/webhooks/{id}", wh.delete, http.MethodDelete).Needs(apikeys.ScopeWebhooksManage)
		s.Handle("/webhooks/{id}/rotate-secret", wh.rotate, http.MethodPost).Needs(apikeys.ScopeWebhooksManage)
		s.Handle("/webhooks/{id}/test", wh.test, http.MethodPost).Needs(apikeys.ScopeWebhooksManage)
	}
	if opts.Plugins != nil {
		pl := &pluginRoutes{plugins: opts.Plugins}
		s.Handle("/plugins", pl.list, http.MethodGet).Needs(apikeys.ScopePluginsRead)
	}
	if opts.Rules != nil {
		rl := &ruleRoutes{rules: opts.Rules}
		s.Handle("/rules", rl.list, http.MethodGet).Needs(apikeys.ScopeRulesManage)
	}

	if opts.Events != nil {
		ev := &eventRoutes{hub: opts.Events, stored: opts.StoredEvents, keepAlive: opts.EventsKeepAlive, stopping: s.stopping}
		if ev.keepAlive <= 0 {
			ev.keepAlive = 15 * time.Second
		}
		s.Handle("/events", ev.stream, http.MethodGet).Needs(apikeys.ScopeEventsRead).Filtered()
	}
	if opts.Metrics != nil {
		// Open on loopback by default (http.metrics_auth), keyed elsewhere.
		rt := &Route{s, s.root.Handle("/metrics", opts.Metrics).Methods(http.MethodGet)}
		if opts.MetricsOpen {
			rt.Public()
		} else {
			rt.Needs(apikeys.ScopeAdmin)
		}
	}
	if opts.Keys != nil {
		k := &keyRoutes{keys: opts.Keys}
		s.Handle("/keys", k.create, http.MethodPost).Needs(apikeys.ScopeAdmin)
		s.Handle("/keys", k.list, http.MethodGet).Needs(apikeys.ScopeAdmin)
		s.Handle("/keys/{keyId}", k.get, http.MethodGet).Needs(apikeys.ScopeAdmin)
		s.Handle("/keys/{keyId}/rotate", k.rotate, http.MethodPost).Needs(apikeys.ScopeAdmin)
		s.Handle("/keys/{keyId}", k.delete, http.MethodDelete).Needs(apikeys.ScopeAdmin)
	}

	if opts.UI != nil {
		// The dashboard's static files: no key (they hold no data; every
		// call the pages make needs one), but behind the Host/Origin guard
		// like every route.
		(&Route{s, s.root.Handle("/ui", opts.UI).Methods(http.MethodGet, http.MethodHead)}).Public()
		(&Route{s, s.root.PathPrefix("/ui/").Handler(opts.UI).Methods(http.MethodGet, http.MethodHead)}).Public()
	}

	// Any valid key reads the API's description.
	s.Handle("/openapi.json", s.openapi, http.MethodGet).Needs("")
}

// healthz answers while the process is alive and serving HTTP.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	return WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 once start-up is done and the store is reachable, 503
// otherwise, so a load balancer sends traffic only to daemons that can serve.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := s.ready(r.Context()); err != nil {
		return Unavailable("%s", err.Error())
	}
	return WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
