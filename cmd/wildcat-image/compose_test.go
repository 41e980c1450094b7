package main

import (
	"context"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/wildcathub/wildcat/core/config"
)

// TestComposeFile loads compose.yaml with compose-go (Docker Compose's own
// loader, which checks it against the Compose specification's schema) and
// checks that its parts fit: MongoDB runs as the replica set Wildcat's URI
// names, its health check initiates it with a member name the URI's host
// matches, Wildcat starts once it is healthy, from this Dockerfile, with
// the image's volume and port, and only real WILDCAT_* variables.
func TestComposeFile(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "compose.yaml")}, cli.WithWorkingDirectory(root))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	mongo, ok := project.Services["mongo"]
	if !ok {
		t.Fatal("compose.yaml: no mongo service")
	}
	wildcat, ok := project.Services["wildcat"]
	if !ok {
		t.Fatal("compose.yaml: no wildcat service")
	}

	// The replica set: mongod's --replSet, rs.initiate's _id and member.
	i := slices.Index(mongo.Command, "--replSet")
	if i < 0 || i+1 >= len(mongo.Command) {
		t.Fatalf("mongo command %q: no --replSet", mongo.Command)
	}
	replSet := mongo.Command[i+1]
	if mongo.HealthCheck == nil {
		t.Fatal("mongo: no health check (it initiates the replica set)")
	}
	check := strings.Join(mongo.HealthCheck.Test, " ")
	m := regexp.MustCompile(`rs\.initiate\(\{_id: "([^"]+)", members: \[\{_id: 0, host: "([^"]+)"\}\]\}\)`).FindStringSubmatch(check)
	if m == nil || m[1] != replSet {
		t.Fatalf("mongo health check %q: want rs.initiate of %s", check, replSet)
	}
	member := m[2]
	if !strings.Contains(check, "isWritablePrimary") {
		t.Fatalf("mongo health check %q: healthy before it is primary", check)
	}

	// Wildcat's store: that replica set, at a host the member name matches.
	uri := wildcat.Environment["WILDCAT_MONGODB_URI"]
	if uri == nil {
		t.Fatal("wildcat: no WILDCAT_MONGODB_URI")
	}
	u, err := url.Parse(*uri)
	if err != nil || u.Scheme != "mongodb" {
		t.Fatalf("WILDCAT_MONGODB_URI %q: %v", *uri, err)
	}
	if u.Host != member || u.Query().Get("replicaSet") != replSet {
		t.Fatalf("WILDCAT_MONGODB_URI %q: want host %s (the member's name) and replicaSet=%s", *uri, member, replSet)
	}
	if host, _, _ := strings.Cut(member, ":"); host != "mongo" && host != mongo.Hostname {
		t.Fatalf("member %s does not resolve to the mongo service", member)
	}
	if dep, ok := wildcat.DependsOn["mongo"]; !ok || dep.Condition != "service_healthy" {
		t.Fatalf("wildcat depends_on %+v: want mongo with condition service_healthy", wildcat.DependsOn)
	}
	keys := map[string]bool{}
	for _, k := range config.Keys() {
		keys[k.Env] = true
	}
	for name := range wildcat.Environment {
		if !keys[name] {
			t.Errorf("wildcat environment %s is not a configuration key's variable", name)
		}
	}

	// Built from this Dockerfile, with its volume and port.
	if wildcat.Build == nil || filepath.Clean(wildcat.Build.Context) != root {
		t.Fatalf("wildcat build %+v: want the repository", wildcat.Build)
	}
	p, err := readPlan(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for vol := range p.config.Volumes {
		if !slices.ContainsFunc(wildcat.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == vol && v.Type == "volume" }) {
			t.Errorf("wildcat volumes %+v: none at the image's VOLUME %s", wildcat.Volumes, vol)
		}
	}
	for port := range p.config.ExposedPorts {
		n, _, _ := strings.Cut(port, "/")
		if !slices.ContainsFunc(wildcat.Ports, func(sp types.ServicePortConfig) bool { return strconv.Itoa(int(sp.Target)) == n }) {
			t.Errorf("wildcat ports %+v: the image's port %s is not published", wildcat.Ports, port)
		}
	}
}
