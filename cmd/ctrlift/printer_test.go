package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestUnescapeHTML(t *testing.T) {
	for in, want := range map[string]string{
		`{"cmd":"a \u0026\u0026 b"}`: `{"cmd":"a && b"}`,
		`"\u003cscript\u003E"`:       `"<script>"`,
		`"\\u0026"`:                  `"\\u0026"`, // an escaped backslash, then text
		`"\\\u0026"`:                 `"\\&"`,
		`"\u00e9 \n \"x\""`:          `"\u00e9 \n \"x\""`,
		`"trailing \`:                `"trailing \`,
		`"\u002"`:                    `"\u002"`,
	} {
		if got := string(unescapeHTML([]byte(in))); got != want {
			t.Errorf("unescapeHTML(%s) = %s, want %s", in, got, want)
		}
	}
	// A document stored with Go's escaping prints with & and stays the
	// same JSON value.
	raw := json.RawMessage(`{"args":["sh","-c","a \u0026\u0026 b \u003e /x"]}`)
	var buf bytes.Buffer
	if err := newJSON(&buf, false).Encode(map[string]any{"spec": raw}); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != `{"spec":{"args":["sh","-c","a && b > /x"]}}`+"\n" {
		t.Errorf("encoded %s", got)
	}
	var a, b any
	json.Unmarshal(raw, &a)
	json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &b)
	if !equalJSON(map[string]any{"spec": a}, b) {
		t.Error("unescaping changed the value")
	}
}
