package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/sealing/sealtest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

const (
	sealKey1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	sealKey2 = "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4="
)

// TestEncryptionAtRest runs the daemon with a key on either engine: what
// comes in over the API is readable through it while the store's bytes
// (the database file and media files, or every MongoDB collection) hold no
// message text, caption or media bytes; the text search answers 400
// naming q; after a restart with a second, active key the old messages
// still read.
func TestEncryptionAtRest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		cfg := engineConfig(t, e)
		cfg.Encryption.Keys = "k1:" + sealKey1
		d, c := accountsDaemon(t, cfg, time.Millisecond, nil)
		c.connectSim("vault")
		c.inject("vault", `{"from":"+15550001111","id":"V1","text":"TEXTMARK-daemon-61ac"}`)
		c.inject("vault", `{"from":"+15550001111","id":"V2","media":{"kind":"image","mimetype":"image/png","caption":"CAPTIONMARK-daemon-08f2"}}`)
		media := bytes.Repeat([]byte("MEDIAMARK-daemon-c3d9 "), 20_000)
		up := c.must(c.do("POST", "/v1/media", "image/png", string(media)), 201).json(t)
		id := up["mediaId"].(string)

		if m := c.message("vault", "V1"); m.Text != "TEXTMARK-daemon-61ac" {
			t.Fatalf("V1 reads %q", m.Text)
		}
		if m := c.message("vault", "V2"); m.Media == nil || m.Media.Caption != "CAPTIONMARK-daemon-08f2" {
			t.Fatalf("V2 reads %+v", m.Media)
		}
		got := c.must(c.do("GET", "/v1/media/"+id, "", "", "Range", "bytes=70000-70009"), 206)
		if !bytes.Equal(got.body, media[70000:70010]) {
			t.Fatalf("range read %q", got.body)
		}
		checkProblem(t, c.get("/v1/accounts/vault/messages?q=TEXTMARK"), 400, "q")

		dump := func() []byte {
			if e == storetest.MongoDB {
				return sealtest.MongoBytes(t, d.Store().DB())
			}
			return append(sealtest.SQLiteBytes(t, filepath.Join(cfg.DataDir, daemon.DatabaseFile)),
				sealtest.DirBytes(t, filepath.Join(cfg.DataDir, daemon.MediaDir))...)
		}
		sealtest.NoPlaintext(t, string(e), dump(), "TEXTMARK-daemon-61ac", "CAPTIONMARK-daemon-08f2", "MEDIAMARK-daemon-c3d9")

		// Rotation: a second key, active; the old messages still read.
		if err := d.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		cfg.Encryption.Keys = fmt.Sprintf("k1:%s,k2:%s", sealKey1, sealKey2)
		_, c = accountsDaemon(t, cfg, time.Millisecond, nil)
		if m := c.message("vault", "V1"); m.Text != "TEXTMARK-daemon-61ac" {
			t.Fatalf("after rotation V1 reads %q", m.Text)
		}
		if r := c.must(c.get("/v1/media/"+id), 200); !bytes.Equal(r.body, media) {
			t.Fatal("media after rotation differs")
		}
	})
}
