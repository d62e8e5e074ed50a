package moderation

import (
	"net"
	"regexp"
	"strings"

	"github.com/parleychat/parley/ingest"
)

// tlds are the top-level domains a bare "name.tld" is recognised with;
// links with a scheme or www. are recognised with any.
const tlds = `com|net|org|info|biz|io|co|me|ly|gg|tv|cc|ai|app|dev|xyz|top|online|site|shop|store|club|vip|win|bid|loan|work|fun|space|website|tech|cloud|live|click|link|icu|buzz|rest|cam|monster|ru|su|cn|de|fr|es|pt|br|uk|us|eu|nl|it|pl|in|to|tk|ml|ga|cf|gq|pw|ws`

var (
	urlRe = regexp.MustCompile(`(?i)\b(?:https?://[^\s<>"'` + "`" + `]+|www\.[^\s<>"'` + "`" + `]+|(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:` + tlds + `)\b(?:[/?#][^\s<>"'` + "`" + `]*)?)`)
	// "example[.]com", "example (dot) com": written to slip past link filters
	obfLinkRe = regexp.MustCompile(`(?i)\b[a-z0-9-]{2,63}\s*(?:\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\{dot\})\s*(?:` + tlds + `)\b`)
)

// Domains that hide where a link goes.
var shorteners = []string{
	"bit.ly", "tinyurl.com", "t.co", "goo.gl", "is.gd", "cutt.ly", "rb.gy", "ow.ly",
	"shorturl.at", "tiny.cc", "buff.ly", "rebrand.ly", "t.ly", "s.id", "v.gd", "bl.ink",
}

// Brands phishing pages imitate, with their real registered domains.
var brands = map[string][]string{
	"paypal":        {"paypal.com", "paypal.me"},
	"apple":         {"apple.com", "icloud.com"},
	"icloud":        {"icloud.com", "apple.com"},
	"amazon":        {"amazon.com", "amazon.de", "amazon.co.uk", "amazon.fr", "amazon.es", "amazon.com.br", "amazon.it"},
	"microsoft":     {"microsoft.com", "live.com", "office.com"},
	"office365":     {"office.com", "microsoft.com"},
	"netflix":       {"netflix.com"},
	"google":        {"google.com"},
	"facebook":      {"facebook.com", "fb.com"},
	"instagram":     {"instagram.com"},
	"whatsapp":      {"whatsapp.com"},
	"dhl":           {"dhl.com", "dhl.de"},
	"fedex":         {"fedex.com"},
	"usps":          {"usps.com"},
	"coinbase":      {"coinbase.com"},
	"binance":       {"binance.com"},
	"metamask":      {"metamask.io"},
	"steam":         {"steampowered.com", "steamcommunity.com"},
	"wellsfargo":    {"wellsfargo.com"},
	"chase":         {"chase.com"},
	"santander":     {"santander.com", "santander.co.uk", "santander.es", "santander.de"},
	"hsbc":          {"hsbc.com", "hsbc.co.uk"},
	"itau":          {"itau.com.br"},
	"nubank":        {"nubank.com.br"},
	"cdiscount":     {"cdiscount.com"},
	"mercadolibre":  {"mercadolibre.com", "mercadolivre.com.br"},
	"zalando":       {"zalando.com", "zalando.de", "zalando.fr", "zalando.es", "zalando.co.uk", "zalando.it", "zalando.nl", "zalando.pt"},
	"spotify":       {"spotify.com"},
	"linkedin":      {"linkedin.com"},
	"youtube":       {"youtube.com", "youtu.be"},
	"roblox":        {"roblox.com"},
	"disney":        {"disneyplus.com", "disney.com"},
	"booking":       {"booking.com"},
	"airbnb":        {"airbnb.com"},
	"revolut":       {"revolut.com"},
	"bancodobrasil": {"bb.com.br"},
	"caixa":         {"caixa.gov.br", "caixabank.es"},
	"sparkasse":     {"sparkasse.de"},
	"postbank":      {"postbank.de"},
	"correos":       {"correos.es"},
	"chronopost":    {"chronopost.fr"},
	"laposte":       {"laposte.fr"},
	"ameli":         {"ameli.fr"},
}

// Host words that, on a cheap top-level domain, mark a phishing page.
var lureWords = []string{"login", "signin", "verify", "secure", "account", "update", "wallet", "billing", "support", "recover", "unlock", "confirm"}
var cheapTLDs = []string{"xyz", "top", "tk", "ml", "ga", "cf", "gq", "click", "link", "online", "site", "icu", "buzz", "rest", "cam", "monster", "pw", "ws", "live",
	"shop", "bet", "vip", "win", "loan", "work", "fun", "space", "website", "lol", "quest", "cyou", "cfd", "sbs", "store", "club", "bid", "today", "cc", "su"}

// riskyTLD reports a host on a top-level domain that spam and scams
// favour because names there are cheap.
func riskyTLD(host string) bool {
	tld := host[strings.LastIndex(host, ".")+1:]
	for _, c := range cheapTLDs {
		if tld == c {
			return true
		}
	}
	return false
}

// lookalike reports a host label that imitates a brand on a domain that
// is not the brand's: the same once look-alike characters are read alike
// ("rnicrosoft", "netfl1x", "paypai", "cdlscount"), or, for brands of at
// least seven letters, one edit away ("microsfot", "instagarm" aside).
func lookalike(host string) bool {
	reg := registered(host)
	for _, label := range strings.FieldsFunc(host, func(r rune) bool { return r == '.' || r == '-' }) {
		if len(label) < 5 {
			continue
		}
		canon := homoglyphs(label)
		if brand, ok := canonBrands[canon]; ok && label != brand && !inDomains(reg, brands[brand]) {
			return true
		}
		for _, lb := range longBrands {
			if brand := lb[0]; label != brand && editDistanceAtMost1(canon, lb[1]) && !inDomains(reg, brands[brand]) {
				return true
			}
		}
	}
	return false
}

var digraphs = strings.NewReplacer("rn", "m", "vv", "w")

// canonBrands maps homoglyphs(brand) to the brand; longBrands are the
// brands of at least seven letters, matched up to one edit away.
var canonBrands, longBrands = func() (map[string]string, [][2]string) {
	m := make(map[string]string, len(brands))
	var long [][2]string // brand, its homoglyph form
	for b := range brands {
		m[homoglyphs(b)] = b
		if len(b) >= 7 {
			long = append(long, [2]string{b, homoglyphs(b)})
		}
	}
	return m, long
}()

// homoglyphs reads characters that look alike as one: 1, i, l and | as
// l; 0 as o; rn as m; vv as w; 3 as e; 4 as a; 5 as s.
func homoglyphs(s string) string {
	s = digraphs.Replace(s)
	b := []byte(s)
	for i, c := range b {
		switch c {
		case '1', 'i', '|':
			b[i] = 'l'
		case '0':
			b[i] = 'o'
		case '3':
			b[i] = 'e'
		case '4':
			b[i] = 'a'
		case '5':
			b[i] = 's'
		}
	}
	return string(b)
}

// editDistanceAtMost1 reports whether one substitution, insertion or
// deletion (or none) turns a into b.
func editDistanceAtMost1(a, b string) bool {
	if len(a) < len(b) {
		a, b = b, a
	}
	if len(a)-len(b) > 1 {
		return false
	}
	i := 0
	for i < len(b) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		return a[i+min(1, len(a)-i):] == b[i+min(1, len(b)-i):]
	}
	return a[i+1:] == b[i:]
}

// linkRules are a policy's link options prepared for matching.
type linkRules struct {
	allow, block []string
	blockUnknown bool
	// own maps homoglyphs(label) of each of the site's own domains'
	// first label to the domain, so look-alikes of it are found
	own map[string]string
}

func newLinkRules(o LinkOptions) linkRules {
	lr := linkRules{blockUnknown: o.BlockUnknown}
	for _, d := range o.AllowDomains {
		lr.allow = append(lr.allow, strings.ToLower(strings.TrimSpace(d)))
	}
	for _, d := range o.BlockDomains {
		lr.block = append(lr.block, strings.ToLower(strings.TrimSpace(d)))
	}
	for _, d := range o.OwnDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		lr.allow = append(lr.allow, d)
		if lr.own == nil {
			lr.own = map[string]string{}
		}
		label, _, _ := strings.Cut(registered(d), ".")
		lr.own[homoglyphs(label)] = d
	}
	return lr
}

// imitatesOwn reports a host that imitates one of the site's own
// domains without being it ("acme-support.xyz", "acrne.com" for acme.com).
func (lr *linkRules) imitatesOwn(host string) bool {
	if len(lr.own) == 0 {
		return false
	}
	for _, label := range strings.FieldsFunc(host, func(r rune) bool { return r == '.' || r == '-' }) {
		canon := homoglyphs(label)
		if _, ok := lr.own[canon]; ok {
			return true // the site's name on a domain that is not the site's
		}
		for own := range lr.own {
			if len(own) >= 5 && editDistanceAtMost1(canon, own) {
				return true
			}
		}
	}
	return false
}

// inDomains reports whether host is one of domains or below one.
func inDomains(host string, domains []string) bool {
	for _, d := range domains {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// findLinks appends spans for links the rules object to: blocked or (if so
// set) unknown domains and shorteners as "link", deceptive links as
// "phishing", obfuscated links and link-stuffed messages as "spam".
// It returns how many links the text holds.
// The hosts of links nothing else was said about are appended to hosts
// (for the newly-seen-domain signal, see DomainSightings).
func (lr *linkRules) findLinks(text string, brackets bool, words [][2]int, emails []ingest.Span, out []ingest.Span, hosts *[]string) ([]ingest.Span, int, bool) {
	links := 0
	risky := false
	var found [][2]int
	for _, w := range words {
		if !dottedName(text[w[0]:w[1]]) || inside(w[0], w[1], emails) {
			continue // an e-mail address is PII, not a link
		}
		for _, m := range urlRe.FindAllStringIndex(text[w[0]:w[1]], -1) {
			found = append(found, [2]int{w[0] + m[0], w[0] + m[1]})
		}
	}
	for _, m := range found {
		start, end := m[0], m[1]
		if start > 0 && (text[start-1] == '@' || text[start-1] == '.') {
			continue // the domain of an email address
		}
		if overlaps(start, end, emails) {
			continue
		}
		raw := strings.TrimRight(text[start:end], ".,;:!?)]}'\"")
		end = start + len(raw)
		host, userinfo := linkHost(raw)
		if host == "" {
			continue
		}
		links++
		if inDomains(host, lr.allow) {
			continue
		}
		imitation := lookalike(host)
		if riskyTLD(host) || imitation {
			risky = true
		}
		switch {
		case inDomains(host, lr.block):
			out = append(out, ingest.Span{Start: start, End: end, Category: CatLink, Rule: "link:blocked-domain", Match: host})
		case phishingHost(host, userinfo, raw) || imitation || lr.imitatesOwn(host):
			out = append(out, ingest.Span{Start: start, End: end, Category: CatPhishing, Rule: "link:deceptive", Match: host})
		case inDomains(host, shorteners):
			out = append(out, ingest.Span{Start: start, End: end, Category: CatLink, Rule: "link:shortener", Match: host})
		case lr.blockUnknown:
			out = append(out, ingest.Span{Start: start, End: end, Category: CatLink, Rule: "link:not-allowed", Match: host})
		default:
			*hosts = append(*hosts, registered(host))
		}
	}
	var obf [][]int
	if brackets && hasObfuscation(text, "dot") {
		obf = obfLinkRe.FindAllStringIndex(text, -1)
	}
	for _, m := range obf {
		if overlaps(m[0], m[1], emails) {
			continue // "name [at] mail [dot] com" is an email, found as PII
		}
		links++
		out = append(out, ingest.Span{Start: m[0], End: m[1], Category: CatSpam, Rule: "link:obfuscated"})
	}
	return out, links, risky
}

// inside reports whether [start, end) lies within one of spans.
func inside(start, end int, spans []ingest.Span) bool {
	for _, s := range spans {
		if start >= s.Start && end <= s.End {
			return true
		}
	}
	return false
}

// linkHost extracts the lower-case host of a link and whether it carries
// user information ("https://paypal.com@evil.example/").
func linkHost(raw string) (host string, userinfo bool) {
	s := raw
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		userinfo = true
		s = s[i+1:]
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	return strings.TrimSuffix(strings.ToLower(s), "."), userinfo
}

// registered returns the registrable part of a host: the last two labels,
// or three under a second-level registry such as co.uk or com.br.
func registered(host string) string {
	labels := strings.Split(host, ".")
	if len(labels) <= 2 {
		return host
	}
	n := 2
	if sl := labels[len(labels)-2]; sl == "co" || sl == "com" || sl == "org" || sl == "net" || sl == "gov" || sl == "ac" {
		n = 3
	}
	return strings.Join(labels[len(labels)-n:], ".")
}

// phishingHost looks for the marks of a deceptive link: a bare IP address,
// punycode, user information before the host, a brand's name (also in
// leetspeak) on a domain that is not the brand's, or lure words on a
// cheap top-level domain.
func phishingHost(host string, userinfo bool, raw string) bool {
	if userinfo && strings.Contains(raw, "://") {
		return true
	}
	if net.ParseIP(host) != nil {
		return true
	}
	if strings.Contains(host, "xn--") {
		return true
	}
	reg := registered(host)
	plain := unleetHost(host)
	for _, tok := range strings.FieldsFunc(plain, func(r rune) bool { return r == '.' || r == '-' }) {
		for brand, domains := range brands {
			if imitates(tok, brand) && !inDomains(reg, domains) {
				return true
			}
		}
	}
	tld := host[strings.LastIndex(host, ".")+1:]
	for _, c := range cheapTLDs {
		if tld != c {
			continue
		}
		for _, w := range lureWords {
			if strings.Contains(plain, w) {
				return true
			}
		}
	}
	return false
}

// imitates reports whether a host label is a brand's name, alone or glued
// to a lure word ("paypal", "paypallogin", "appleid").
func imitates(label, brand string) bool {
	if label == brand {
		return true
	}
	rest, ok := strings.CutPrefix(label, brand)
	if !ok {
		rest, ok = strings.CutSuffix(label, brand)
	}
	if !ok {
		return false
	}
	if rest == "id" || rest == "service" || rest == "help" || rest == "my" {
		return true
	}
	for _, w := range lureWords {
		if rest == w {
			return true
		}
	}
	return false
}

// unleetHost reads digits in a host as the letters they imitate:
// "paypa1-secure" reads "paypal-secure".
func unleetHost(h string) string {
	var b strings.Builder
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch c {
		case '0':
			c = 'o'
		case '1':
			c = 'l'
		case '3':
			c = 'e'
		case '4':
			c = 'a'
		case '5':
			c = 's'
		}
		b.WriteByte(c)
	}
	return b.String()
}

func overlaps(start, end int, spans []ingest.Span) bool {
	for _, s := range spans {
		if start < s.End && end > s.Start {
			return true
		}
	}
	return false
}

// dottedName reports whether a word has a dot between two letters or
// digits, as every domain name has.
func dottedName(w string) bool {
	for i := 1; i+1 < len(w); i++ {
		if w[i] == '.' && isAlnum(w[i-1]) && isAlnum(w[i+1]) {
			return true
		}
	}
	return false
}
