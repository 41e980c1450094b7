package config

import "testing"

func TestGlobBase(t *testing.T) {
	for glob, want := range map[string]string{
		"scripts/*.js": "scripts", "/srv/rules/**/a.js": "/srv/rules", "*.js": ".", "/*.js": "/",
		"scripts/../../etc/*.js": "../etc", "scripts/a.js": "scripts", "a/b[0-9]/c.js": "a", `a/b\*/c.js`: "a",
	} {
		if got := GlobBase(glob); got != want {
			t.Errorf("GlobBase(%q) = %q, want %q", glob, got, want)
		}
	}
	c := Config{Pipeline: []StageConfig{{Rules: []string{"scripts/*.js", "/opt/r/x/*.js"}}}}
	if got := c.EffectiveRuleDirs(); len(got) != 2 || got[0] != "scripts" || got[1] != "/opt/r/x" {
		t.Errorf("derived rule dirs %v", got)
	}
	c.RuleDirs = []string{"/srv"}
	if got := c.EffectiveRuleDirs(); len(got) != 1 || got[0] != "/srv" {
		t.Errorf("rule_dirs %v", got)
	}
}
