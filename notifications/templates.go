package notifications

import (
	htmltemplate "html/template"
	"regexp"
	"strings"
	texttemplate "text/template"
)

// mailView is what the mail templates show.
type mailView struct {
	Lang, Dir   string
	SiteName    string
	Color       string
	Intro       string
	Lines       []lineView
	Button      string
	Link        string
	Hint        string
	Footer      string
	Unsubscribe string
	UnsubLink   string
}

type lineView struct {
	Who, Text, When string
}

var safeColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

func (v *mailView) normalize() {
	if !safeColor.MatchString(v.Color) {
		v.Color = "#4f46e5"
	}
	v.Dir = "ltr"
	switch strings.SplitN(v.Lang, "-", 2)[0] {
	case "ar", "he", "fa", "ur":
		v.Dir = "rtl"
	}
}

var htmlMail = htmltemplate.Must(htmltemplate.New("mail").Parse(`<!doctype html>
<html lang="{{.Lang}}" dir="{{.Dir}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.SiteName}}</title></head>
<body style="margin:0;padding:0;background:#f4f4f7;font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#1f2937">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f4f7"><tr><td align="center" style="padding:24px 12px">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:560px;background:#ffffff;border-radius:8px;overflow:hidden">
<tr><td style="background:{{.Color}};color:#ffffff;padding:16px 24px;font-size:18px;font-weight:600">{{.SiteName}}</td></tr>
<tr><td style="padding:24px">
<p style="margin:0 0 16px">{{.Intro}}</p>
{{range .Lines}}<div style="margin:0 0 12px;padding:12px;border-inline-start:3px solid {{$.Color}};background:#f9fafb">
<div style="font-size:12px;color:#6b7280;margin-bottom:4px">{{.Who}}{{if .When}} · {{.When}}{{end}}</div>
<div style="white-space:pre-wrap">{{.Text}}</div></div>
{{end}}{{if .Link}}<p style="margin:24px 0"><a href="{{.Link}}" style="background:{{.Color}};color:#ffffff;text-decoration:none;padding:10px 18px;border-radius:6px;display:inline-block">{{.Button}}</a></p>{{end}}
{{if .Hint}}<p style="margin:0;color:#4b5563">{{.Hint}}</p>{{end}}
</td></tr>
<tr><td style="padding:16px 24px;border-top:1px solid #e5e7eb;font-size:12px;color:#6b7280">
{{if .Footer}}<p style="margin:0 0 8px;white-space:pre-wrap">{{.Footer}}</p>{{end}}
<a href="{{.UnsubLink}}" style="color:#6b7280">{{.Unsubscribe}}</a></td></tr>
</table></td></tr></table></body></html>
`))

var textMail = texttemplate.Must(texttemplate.New("mail").Parse(`{{.Intro}}
{{range .Lines}}
{{.Who}}{{if .When}} ({{.When}}){{end}}:
{{.Text}}
{{end}}{{if .Link}}
{{.Button}}: {{.Link}}
{{end}}{{if .Hint}}
{{.Hint}}
{{end}}
-- 
{{if .Footer}}{{.Footer}}
{{end}}{{.Unsubscribe}}: {{.UnsubLink}}
`))

// render fills both templates.
func (v mailView) render() (text, html string, err error) {
	v.normalize()
	var tb, hb strings.Builder
	if err := textMail.Execute(&tb, v); err != nil {
		return "", "", err
	}
	if err := htmlMail.Execute(&hb, v); err != nil {
		return "", "", err
	}
	return tb.String(), hb.String(), nil
}
