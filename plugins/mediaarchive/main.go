// Command mediaarchive is Wildcat's media archiving plugin: an outbox sink
// that keeps the bytes of every media message (image, video, audio, voice,
// document, sticker; in and out), de-duplicated by SHA-256, in the daemon's
// media bucket (GridFS, servable by GET /v1/media/{mediaId}), a directory
// tree and/or an S3-compatible bucket (also served by GET
// /v1/media/{mediaId}), and links them back to the message.
//
// Declare it in config.yaml and feed it media messages:
//
//	plugins:
//	  mediaarchive:
//	    path: bin/plugins/mediaarchive
//	    timeout: 2m
//	    config:
//	      targets: [gridfs]          # gridfs, dir and/or s3
//	      dir: data/media            # with the dir target
//	      s3: {bucket: media, endpoint: "http://minio:9000", path_style: true}  # with the s3 target
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
