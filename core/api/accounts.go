package api

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/skip2/go-qrcode"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/netproxy"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
)

// Accounts is what the account routes need; the session Manager
// implements it.
type Accounts interface {
	CreateAccount(ctx context.Context, spec session.AccountSpec) (*session.AccountInfo, error)
	GetAccount(ctx context.Context, id string) (*session.AccountInfo, error)
	ListAccounts(ctx context.Context) ([]*session.AccountInfo, error)
	DeleteAccount(ctx context.Context, id string, purge bool) error
	Connect(ctx context.Context, id string) (*session.AccountInfo, error)
	Logout(ctx context.Context, id string) (*session.AccountInfo, error)
	QR(ctx context.Context, id string) (*session.QR, error)
	PairPhone(ctx context.Context, id, phone string) (string, error)
	// SetProxy changes the account's proxy ("" for the default) and
	// reconnects a running session through it.
	SetProxy(ctx context.Context, id, proxy string) (*session.AccountInfo, error)
	DriverAvailable(name string) bool
}

// SimInjector delivers inbound messages to sim accounts; the sim Network
// implements it.
type SimInjector interface {
	Inject(ctx context.Context, accountID string, in *sim.Inbound) (*event.Event, error)
	// Hosts reports whether the account is a sim account whose session
	// runs on this network: then it needs no look-up in the store.
	Hosts(accountID string) bool
}

type accountRoutes struct {
	accounts Accounts
	sim      SimInjector
	// messages finds what a sim message replies or reacts to; nil: nothing
	// is found.
	messages MessageStore
	// cluster names the instance running an account; nil: none shown.
	cluster Cluster
}

// accountJSON is the wire form of an account.
type accountJSON struct {
	ID     string        `json:"id"`
	Driver string        `json:"driver"`
	Name   string        `json:"name"`
	State  session.State `json:"state"`
	// Reason explains the last state transition.
	Reason    string    `json:"reason"`
	JID       string    `json:"jid"`
	PushName  string    `json:"pushName"`
	LastError string    `json:"lastError"`
	Since     time.Time `json:"since"`
	CreatedAt time.Time `json:"createdAt"`
	// DriverAvailable is false when this build cannot run the account.
	DriverAvailable bool `json:"driverAvailable"`
	// Proxy is the account's own proxy with its password masked; "" when
	// it uses the default (drivers.whatsapp.proxy).
	Proxy string `json:"proxy"`
	// Instance is the daemon running the account's session (GET
	// /v1/instances); empty when none does right now.
	Instance *string `json:"instance,omitempty"`
}

func (h *accountRoutes) render(a *session.AccountInfo) accountJSON {
	return accountJSON{
		ID: a.ID, Driver: a.Driver, Name: a.Name, State: a.State, Reason: a.Reason,
		JID: a.JID, PushName: a.PushName, LastError: a.LastError,
		Since: a.Since, CreatedAt: a.CreatedAt, DriverAvailable: h.accounts.DriverAvailable(a.Driver),
		Proxy: netproxy.Redact(a.Proxy),
	}
}

// accountError maps the session package's errors to problems. Anything
// else is a server fault and becomes an opaque 500.
func accountError(err error) error {
	var inv *session.InvalidError
	switch {
	case errors.As(err, &inv):
		return Invalid(inv.Field, "%s", inv.Reason)
	case errors.Is(err, session.ErrAccountNotFound):
		return &Error{Status: http.StatusNotFound, Slug: "not-found", Title: "Not found", Detail: errDetail(err), Err: err}
	case errors.Is(err, session.ErrAccountExists):
		return &Error{Status: http.StatusConflict, Slug: "account-exists", Title: "Account already exists", Field: "id", Detail: errDetail(err), Err: err}
	case errors.Is(err, session.ErrWrongState), errors.Is(err, session.ErrNotPaired):
		return &Error{Status: http.StatusConflict, Slug: "wrong-state", Title: "Account is not in the right state", Detail: errDetail(err), Err: err}
	case errors.Is(err, session.ErrDriverUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Slug: "driver-unavailable", Title: "Driver not available", Detail: errDetail(err), Err: err}
	case errors.Is(err, session.ErrInvalidRequest):
		return &Error{Status: http.StatusBadRequest, Slug: "invalid-request", Title: "Invalid request", Field: "body", Detail: errDetail(err), Err: err}
	}
	return err
}

// errDetail is the error text, which for these sentinel-wrapping errors
// names the account and the state and carries no internals.
func errDetail(err error) string { return err.Error() }

type createAccountRequest struct {
	ID     string `json:"id"`
	Driver string `json:"driver"`
	Name   string `json:"name"`
	Proxy  string `json:"proxy"`
}

func (h *accountRoutes) create(w http.ResponseWriter, r *http.Request) error {
	var req createAccountRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	a, err := h.accounts.CreateAccount(r.Context(), session.AccountSpec{ID: req.ID, Driver: req.Driver, Name: req.Name, Proxy: req.Proxy})
	if err != nil {
		return accountError(err)
	}
	w.Header().Set("Location", "/v1/accounts/"+a.ID)
	return WriteJSON(w, http.StatusCreated, h.render(a))
}

type updateAccountRequest struct {
	// Proxy replaces the account's proxy; "" returns it to the default.
	Proxy *string `json:"proxy"`
}

// update changes an account's settings: today its proxy.
func (h *accountRoutes) update(w http.ResponseWriter, r *http.Request) error {
	var req updateAccountRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Proxy == nil {
		return Invalid("proxy", "nothing to change: send the proxy URL, or \"\" for the default")
	}
	a, err := h.accounts.SetProxy(r.Context(), mux.Vars(r)["id"], *req.Proxy)
	if err != nil {
		return accountError(err)
	}
	return WriteJSON(w, http.StatusOK, h.render(a))
}

func (h *accountRoutes) list(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	all, err := h.accounts.ListAccounts(r.Context())
	if err != nil {
		return err
	}
	out := make([]accountJSON, 0, len(all))
	for _, a := range all {
		if allowsAccount(r.Context(), a.ID) { // a key limited to accounts lists only those
			out = append(out, h.render(a))
		}
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"accounts": out})
}

func (h *accountRoutes) get(w http.ResponseWriter, r *http.Request) error {
	a, err := h.accounts.GetAccount(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return accountError(err)
	}
	out := h.render(a)
	if h.cluster != nil {
		in, err := h.cluster.OwnerOf(r.Context(), a.ID)
		if err != nil {
			return err
		}
		out.Instance = &in
	}
	return WriteJSON(w, http.StatusOK, out)
}

func (h *accountRoutes) delete(w http.ResponseWriter, r *http.Request) error {
	purge := false
	if v := r.URL.Query().Get("purge"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Invalid("purge", "expected true or false, got %q", v)
		}
		purge = b
	}
	if err := h.accounts.DeleteAccount(r.Context(), mux.Vars(r)["id"], purge); err != nil {
		return accountError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *accountRoutes) connect(w http.ResponseWriter, r *http.Request) error {
	a, err := h.accounts.Connect(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return accountError(err)
	}
	return WriteJSON(w, http.StatusAccepted, h.render(a))
}

func (h *accountRoutes) logout(w http.ResponseWriter, r *http.Request) error {
	a, err := h.accounts.Logout(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return accountError(err)
	}
	return WriteJSON(w, http.StatusOK, h.render(a))
}

// qr answers the current pairing QR code as JSON, or as a PNG image for
// clients that accept image/png (and not JSON in preference).
func (h *accountRoutes) qr(w http.ResponseWriter, r *http.Request) error {
	q, err := h.accounts.QR(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return accountError(err)
	}
	w.Header().Set("Cache-Control", "no-store")
	if prefersPNG(r.Header.Get("Accept")) {
		png, err := qrcode.Encode(q.Code, qrcode.Medium, 320)
		if err != nil {
			return fmt.Errorf("render QR code: %w", err)
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Length", strconv.Itoa(len(png)))
		w.Header().Set("Expires", q.ExpiresAt.UTC().Format(http.TimeFormat))
		_, err = w.Write(png)
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"code": q.Code, "expiresAt": q.ExpiresAt.UTC()})
}

// prefersPNG reads an Accept header: image/png wins when it is listed with
// a quality above zero and at least that of any JSON type.
func prefersPNG(accept string) bool {
	best := map[string]float64{}
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		best[mt] = max(best[mt], q)
	}
	png := best["image/png"]
	return png > 0 && png >= best["application/json"]
}

type pairingCodeRequest struct {
	Phone string `json:"phone"`
}

func (h *accountRoutes) pairingCode(w http.ResponseWriter, r *http.Request) error {
	var req pairingCodeRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	phone, err := phoneDigits(req.Phone)
	if err != nil {
		return Invalid("phone", "%s", err.Error())
	}
	code, err := h.accounts.PairPhone(r.Context(), mux.Vars(r)["id"], phone)
	if err != nil {
		if errors.Is(err, session.ErrInvalidRequest) {
			return Invalid("phone", "%s", err.Error())
		}
		return accountError(err)
	}
	return WriteJSON(w, http.StatusOK, map[string]string{"code": code})
}

// phoneDigits normalises a phone number in international form ("+1 555
// 123-4567") to its digits.
func phoneDigits(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", errors.New("must not be empty; send the number with country code, e.g. +15551234567")
	}
	d := strings.NewReplacer(" ", "", "-", "", "(", "", ")", "", ".", "").Replace(strings.TrimPrefix(strings.TrimSpace(s), "+"))
	for _, c := range d {
		if c < '0' || c > '9' {
			return "", fmt.Errorf("%q is not a phone number: use digits with country code, e.g. +15551234567", s)
		}
	}
	if len(d) < 7 || len(d) > 15 || d[0] == '0' {
		return "", fmt.Errorf("%q is not an international phone number (7 to 15 digits, country code first)", s)
	}
	return d, nil
}
