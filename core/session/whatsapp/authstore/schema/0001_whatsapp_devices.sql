-- Which whatsmeow device is whose. whatsmeow's sqlstore keeps the auth
-- state in its own whatsmeow_* tables of this file, keyed by the device's
-- JID; Wildcat addresses a device by its account. A row exists only for a
-- paired device: it is written in the transaction that stores the device
-- record and deleted in the one that deletes it.
CREATE TABLE whatsapp_devices (
	account_id TEXT NOT NULL PRIMARY KEY,
	-- whatsmeow_device.jid; one device serves one account.
	jid        TEXT NOT NULL UNIQUE
) STRICT;
