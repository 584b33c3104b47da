// chart-render: renders a Helm chart's templates offline with Go's text/template and the Sprig function
// library, the template engine and functions Helm itself is built on, for checks where Helm cannot be had
// (its Go module cannot be fetched on our machines). It is NOT Helm: no hooks ordering, no chart
// dependencies, no lookup, no Capabilities beyond a fixed Kubernetes version, no schema check (the kit
// validates values against values.schema.json itself). Helm's own functions used by charts (include, tpl,
// toYaml, fromYaml, toJson, required) are re-implemented here with Helm's documented behaviour.
//
//	chart-render CHART_DIR RELEASE_NAME NAMESPACE [VALUES_FILE...]
//
// Writes the rendered manifests to stdout, each after a `# Source: CHART/templates/FILE` line, as
// `helm template` does. Exit 1 with the template error on stderr.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v3"
)

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	os.Exit(1)
}

func readYAML(path string) map[string]interface{} {
	raw, err := os.ReadFile(path)
	if err != nil {
		die("%v", err)
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(raw, &out); err != nil {
		die("%s: %v", path, err)
	}
	return out
}

// merge: values from `over` win; maps merge key by key, as Helm coalesces values files.
func merge(base, over map[string]interface{}) map[string]interface{} {
	for k, v := range over {
		if bv, ok := base[k].(map[string]interface{}); ok {
			if ov, ok := v.(map[string]interface{}); ok {
				base[k] = merge(bv, ov)
				continue
			}
		}
		if v == nil {
			delete(base, k)
			continue
		}
		base[k] = v
	}
	return base
}

func toYAML(v interface{}) string {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func main() {
	if len(os.Args) < 4 {
		die("usage: chart-render CHART_DIR RELEASE_NAME NAMESPACE [VALUES_FILE...]")
	}
	chartDir, release, namespace := os.Args[1], os.Args[2], os.Args[3]
	meta := readYAML(filepath.Join(chartDir, "Chart.yaml"))
	values := readYAML(filepath.Join(chartDir, "values.yaml"))
	for _, f := range os.Args[4:] {
		values = merge(values, readYAML(f))
	}
	chart := map[string]interface{}{
		"Name": meta["name"], "Version": meta["version"], "AppVersion": meta["appVersion"],
		"Description": meta["description"],
	}
	top := map[string]interface{}{
		"Values":  values,
		"Chart":   chart,
		"Release": map[string]interface{}{"Name": release, "Namespace": namespace, "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1},
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{"Version": "v1.30.0", "Major": "1", "Minor": "30"},
		},
	}

	root := template.New("chart")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	funcs["toYaml"] = toYAML
	funcs["toJson"] = func(v interface{}) string { b, _ := jsonMarshal(v); return b }
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		_ = yaml.Unmarshal([]byte(s), &m)
		return m
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, fmt.Errorf(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, fmt.Errorf(msg)
		}
		return v, nil
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		err := root.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, data)
		return buf.String(), err
	}
	root.Funcs(funcs).Option("missingkey=zero")

	files, _ := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	sort.Strings(files)
	var rendered []string
	for _, f := range files {
		base := filepath.Base(f)
		if !(strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml") || strings.HasSuffix(base, ".tpl")) {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			die("%v", err)
		}
		name := filepath.Join(fmt.Sprint(meta["name"]), "templates", base)
		if _, err := root.New(name).Parse(string(raw)); err != nil {
			die("%v", err)
		}
		if !strings.HasPrefix(base, "_") && !strings.HasSuffix(base, ".tpl") {
			rendered = append(rendered, name)
		}
	}
	var out bytes.Buffer
	for _, name := range rendered {
		top["Template"] = map[string]interface{}{"Name": name, "BasePath": filepath.Join(fmt.Sprint(meta["name"]), "templates")}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, top); err != nil {
			die("%v", err)
		}
		for _, doc := range strings.Split(buf.String(), "\n---") {
			if strings.TrimSpace(strings.ReplaceAll(doc, "---", "")) == "" {
				continue
			}
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.TrimLeft(strings.TrimPrefix(doc, "---"), "\n"))
		}
	}
	os.Stdout.Write(out.Bytes())
}

func jsonMarshal(v interface{}) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
