-- The linked device's private keys and its one-time pre-keys, sealed by
-- encryption at rest (or as they are with it off). whatsmeow's sqlstore
-- keeps them in fixed 32-byte columns, which cannot hold a sealed value:
-- its whatsmeow_device row keeps zeros in their place and its
-- whatsmeow_pre_keys table stays empty (keys an older build stored there
-- are moved here when the auth state is opened; see OpenSQLite).
-- Deleting the device record deletes them, as it does whatsmeow's rows.
CREATE TABLE whatsapp_device_keys (
	jid            TEXT NOT NULL PRIMARY KEY
		REFERENCES whatsmeow_device (jid) ON DELETE CASCADE ON UPDATE CASCADE,
	noise_key      BLOB NOT NULL,
	identity_key   BLOB NOT NULL,
	signed_pre_key BLOB NOT NULL,
	adv_key        BLOB NOT NULL
) STRICT;

CREATE TABLE whatsapp_pre_keys (
	jid      TEXT    NOT NULL
		REFERENCES whatsmeow_device (jid) ON DELETE CASCADE ON UPDATE CASCADE,
	key_id   INTEGER NOT NULL,
	key      BLOB    NOT NULL,
	-- 1 once uploaded to WhatsApp's servers.
	uploaded INTEGER NOT NULL,
	PRIMARY KEY (jid, key_id)
) STRICT;
