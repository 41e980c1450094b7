package api

import (
	"net/http"
	"path/filepath"
	"time"
)

// routes lists every route the API serves. Components that arrive later
// (accounts, messages, webhooks, pipeline) add their handlers here, so the
// whole surface reads in one place.
func (s *Server) routes(opts Options) {
	s.root.Handle("/healthz", s.handle(s.healthz)).Methods(http.MethodGet, http.MethodHead)
	s.root.Handle("/readyz", s.handle(s.readyz)).Methods(http.MethodGet, http.MethodHead)

	if opts.Accounts != nil {
		a := &accountRoutes{accounts: opts.Accounts, sim: opts.Sim, messages: opts.Messages}
		s.Handle("/accounts", a.create, http.MethodPost)
		s.Handle("/accounts", a.list, http.MethodGet)
		s.Handle("/accounts/{id}", a.get, http.MethodGet)
		s.Handle("/accounts/{id}", a.delete, http.MethodDelete)
		s.Handle("/accounts/{id}/connect", a.connect, http.MethodPost)
		s.Handle("/accounts/{id}/logout", a.logout, http.MethodPost)
		s.Handle("/accounts/{id}/qr", a.qr, http.MethodGet)
		s.Handle("/accounts/{id}/pairing-code", a.pairingCode, http.MethodPost)
		if opts.Sim != nil {
			s.Handle("/accounts/{id}/sim/inbound", a.simInbound, http.MethodPost)
		}
	}

	if opts.Media != nil {
		uploadLimit, sendLimit := mediaBodyLimit(opts.Media.MaxBytes(), s.maxBody)
		md := &mediaRoutes{store: opts.Media}
		s.root.Handle("/v1/media", s.handleBody(md.upload, uploadLimit, uploadBody)).Methods(http.MethodPost)
		if opts.MediaArchive != nil {
			ma := &mediaArchiveRoutes{archiver: opts.MediaArchive, accounts: opts.Accounts}
			s.Handle("/media/archive", ma.backfill, http.MethodPost)
		}
		s.Handle("/media/{mediaId}", md.download, http.MethodGet, http.MethodHead)

		if opts.Accounts != nil && opts.Messages != nil && opts.Sender != nil {
			m := &messageRoutes{accounts: opts.Accounts, store: opts.Messages, sender: opts.Sender, media: opts.Media, fetcher: opts.Fetcher, maxJSON: s.maxBody}
			s.HandleLimit("/accounts/{id}/messages", sendLimit, s.idempotent(opts.Idempotency, m.send), http.MethodPost)
			s.Handle("/accounts/{id}/messages", m.list, http.MethodGet)
			s.Handle("/accounts/{id}/messages/{messageId}", m.get, http.MethodGet)
			s.Handle("/accounts/{id}/chats", m.chats, http.MethodGet)
			s.Handle("/accounts/{id}/chats/{chatId}", m.chat, http.MethodGet)
		}
	}

	if opts.Pipeline != nil {
		p := &pipelineRoutes{engine: opts.Pipeline, reloader: opts.ConfigReloader}
		for _, d := range opts.RuleDirs {
			if abs, err := filepath.Abs(d); err == nil {
				p.ruleDirs = append(p.ruleDirs, abs)
			}
		}
		s.Handle("/pipeline", p.get, http.MethodGet)
		s.Handle("/pipeline/reload", p.reload, http.MethodPost)
	}
	if opts.Deliveries != nil {
		dl := &deliveryRoutes{outbox: opts.Deliveries}
		s.Handle("/deliveries", dl.list, http.MethodGet)
		// replay before {id}: "replay" is not a job id.
		s.Handle("/deliveries/replay", dl.replay, http.MethodPost)
		s.Handle("/deliveries/{id}", dl.get, http.MethodGet)
		s.Handle("/deliveries/{id}/retry", dl.retry, http.MethodPost)
	}
	if opts.Webhooks != nil {
		wh := &webhookRoutes{reg: opts.Webhooks}
		s.Handle("/webhooks", wh.create, http.MethodPost)
		s.Handle("/webhooks", wh.list, http.MethodGet)
		s.Handle("/webhooks/{id}", wh.get, http.MethodGet)
		s.Handle("/webhooks/{id}", wh.update, http.MethodPatch)
		s.Handle("/webhooks/{id}", wh.delete, http.MethodDelete)
		s.Handle("/webhooks/{id}/rotate-secret", wh.rotate, http.MethodPost)
		s.Handle("/webhooks/{id}/test", wh.test, http.MethodPost)
	}
	if opts.Plugins != nil {
		pl := &pluginRoutes{plugins: opts.Plugins}
		s.Handle("/plugins", pl.list, http.MethodGet)
	}
	if opts.Rules != nil {
		rl := &ruleRoutes{rules: opts.Rules}
		s.Handle("/rules", rl.list, http.MethodGet)
	}

	if opts.Events != nil {
		ev := &eventRoutes{hub: opts.Events, stored: opts.StoredEvents, keepAlive: opts.EventsKeepAlive, stopping: s.stopping}
		if ev.keepAlive <= 0 {
			ev.keepAlive = 15 * time.Second
		}
		s.Handle("/events", ev.stream, http.MethodGet)
	}
	if opts.Metrics != nil {
		s.root.Handle("/metrics", opts.Metrics).Methods(http.MethodGet)
	}

	s.Handle("/openapi.json", s.openapi, http.MethodGet)
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
