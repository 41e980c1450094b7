// Command mediaarchive is Wildcat's media archiving plugin: an outbox sink
// that keeps the bytes of every media message (image, video, audio, voice,
// document, sticker; in and out), de-duplicated by SHA-256, in the daemon's
// media bucket (GridFS, servable by GET /v1/media/{mediaId}) and/or a
// directory tree, and links them back to the message.
//
// Declare it in config.yaml and feed it media messages:
//
//	plugins:
//	  mediaarchive:
//	    path: bin/plugins/mediaarchive
//	    timeout: 2m
//	    config:
//	      targets: [gridfs]          # gridfs and/or dir
//	      dir: data/media            # with the dir target
//	      max_bytes: 67108864        # larger media is skipped, with a reason
//	      mimetypes: [image/*, video/*, audio/*, application/pdf]  # empty: all
//	      retention_days: 0          # 0 keeps archived media forever
//	pipeline:
//	  - name: archive
//	    plugin: mediaarchive
//	    mode: sink
//	    match: {kinds: [message.received, message.sent], hasMedia: true}
package main

import "github.com/wildcathub/wildcat/sdk"

func main() { sdk.Serve(New()) }
