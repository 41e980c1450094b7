package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/apikeys"
)

type keyRoutes struct {
	keys Keys
}

// keyJSON is a key as the API shows it: never its hash; the token only in
// the answers of create and rotate.
type keyJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Accounts  []string   `json:"accounts"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	RotatedAt *time.Time `json:"rotatedAt,omitempty"`
	Key       string     `json:"key,omitempty"`
}

func renderKey(k *apikeys.Key, token string) keyJSON {
	accounts := k.Accounts
	if accounts == nil {
		accounts = []string{}
	}
	return keyJSON{ID: k.ID, Name: k.Name, Scopes: k.Scopes, Accounts: accounts, ExpiresAt: k.ExpiresAt,
		CreatedAt: k.CreatedAt, RotatedAt: k.RotatedAt, Key: token}
}

type keyInput struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Accounts  []string   `json:"accounts"`
	ExpiresAt *time.Time `json:"expiresAt"`
}

// create answers POST /v1/keys: 201 with the key's token, shown this once.
func (h *keyRoutes) create(w http.ResponseWriter, r *http.Request) error {
	var in keyInput
	if err := DecodeJSON(r, &in); err != nil {
		return err
	}
	k, tok, err := h.keys.Create(r.Context(), apikeys.Spec{ID: in.ID, Name: in.Name, Scopes: in.Scopes, Accounts: in.Accounts, ExpiresAt: in.ExpiresAt})
	if err != nil {
		return keyError(err, in.ID)
	}
	w.Header().Set("Location", "/v1/keys/"+k.ID)
	w.Header().Set("Cache-Control", "no-store")
	return WriteJSON(w, http.StatusCreated, renderKey(k, tok))
}

// list answers GET /v1/keys, without secrets.
func (h *keyRoutes) list(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	all, err := h.keys.List(r.Context())
	if err != nil {
		return err
	}
	out := make([]keyJSON, 0, len(all))
	for _, k := range all {
		out = append(out, renderKey(k, ""))
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"keys": out})
}

// get answers GET /v1/keys/{keyId}.
func (h *keyRoutes) get(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["keyId"]
	k, err := h.keys.Get(r.Context(), id)
	if err != nil {
		return keyError(err, id)
	}
	return WriteJSON(w, http.StatusOK, renderKey(k, ""))
}

// rotate answers POST /v1/keys/{keyId}/rotate: a new token, shown this
// once; the old one stops working at once.
func (h *keyRoutes) rotate(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["keyId"]
	k, tok, err := h.keys.Rotate(r.Context(), id)
	if err != nil {
		return keyError(err, id)
	}
	w.Header().Set("Cache-Control", "no-store")
	return WriteJSON(w, http.StatusOK, renderKey(k, tok))
}

// delete answers DELETE /v1/keys/{keyId}: revoked for the next request.
func (h *keyRoutes) delete(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["keyId"]
	if err := h.keys.Delete(r.Context(), id); err != nil {
		return keyError(err, id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func keyError(err error, id string) error {
	var fe *apikeys.FieldError
	switch {
	case errors.As(err, &fe):
		return Invalid(fe.Field, "%s", fe.Problem)
	case errors.Is(err, apikeys.ErrNotFound):
		return NotFound("API key", id)
	case errors.Is(err, apikeys.ErrExists):
		return Conflict("API key %q already exists", id)
	}
	return err
}
