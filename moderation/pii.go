package moderation

import (
	"regexp"
	"strings"

	"github.com/parleychat/parley/ingest"
)

// PII detectors. Every regular expression here is RE2 (linear time); the
// checks that follow a match (Luhn, IBAN mod 97, phone shape and context)
// are linear too.

var (
	emailRe = regexp.MustCompile(`(?i)\b[a-z0-9][a-z0-9._%+\-]{0,63}@[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?)*\.[a-z]{2,24}\b`)
	// "name [at] example [dot] com", "name(at)example.com"
	obfEmailRe = regexp.MustCompile(`(?i)\b[a-z0-9][a-z0-9._%+\-]{0,63}\s*(?:\[at\]|\(at\)|\{at\}|\[@\]|\(@\))\s*[a-z0-9\-]{1,63}\s*(?:\[dot\]|\(dot\)|\{dot\}|\[\.\]|\(\.\)|\s+dot\s+|\.)\s*[a-z]{2,24}\b`)
	// digit runs with separators; judged afterwards as card or phone
	dateRe = regexp.MustCompile(`\b(?:\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}[./-]\d{1,2}[./-]\d{1,2})\b`)
)

// Words that make a number a reference rather than personal data.
var refWords = newWordIndex([]string{
	"order", "tracking", "track", "invoice", "ref", "reference", "ticket", "case",
	"booking", "confirmation", "shipment", "parcel", "sku", "serial", "model", "code", "id",
	"sn", "s/n", "imei", "batch", "isbn", "ean", "upc",
	"receipt", "transaction", "account no", "customer no", "customer number",
	"pedido", "factura", "seguimiento", "referencia", "envio", "numero de pedido",
	"bestellung", "bestellnummer", "rechnung", "sendung", "sendungsnummer", "kundennummer", "auftrag",
	"commande", "facture", "suivi", "colis", "dossier",
	"encomenda", "rastreio", "fatura", "protocolo", "nota fiscal",
	"#", "nr.", "no.", "n°", "nº", "part number", "part no", "item number", "product code", "artikelnummer", "art.-nr",
	"codigo del producto", "codigo do produto", "référence", "reference produit",
})

// Words that make a bare digit run a phone number.
var phoneWords = newWordIndex([]string{
	"call", "phone", "tel", "telephone", "mobile", "cell", "whatsapp", "text me", "sms", "ring me",
	"llama", "llamame", "telefono", "movil", "celular", "numero de telefono",
	"ruf", "anrufen", "telefon", "handy", "nummer",
	"appelle", "appelez", "telephone", "portable", "numero de tel",
	"ligue", "liga", "telefone", "zap",
	// round 3: accented spellings and more verbs
	"llámame", "llámeme", "teléfono", "móvil", "número", "contacto",
	"erreichbar", "téléphone", "joignable", "ligar", "contato", "wpp",
})

// piiFinder collects PII spans of one text.
type piiFinder struct {
	opt   PIIOptions
	text  string
	lower string
	out   []ingest.Span
	// digit runs, computed on first use
	runs     [][2]int
	runsDone bool
}

// findPII appends the PII spans of text; spelled says the text holds
// enough number words to look for digits spelled out.
func findPII(opt PIIOptions, text string, facts textFacts, words [][2]int, out []ingest.Span, spelled bool) []ingest.Span {
	if !opt.Email && !opt.Phone && !opt.Card && !opt.IBAN && !opt.NationalID {
		return out
	}
	f := piiFinder{opt: opt, text: text, out: out}
	// The regular expressions run only on short windows a byte scan
	// finds (words with '@', runs of digits and separators), which keeps a
	// check fast on long texts.
	if opt.Email {
		for _, w := range words {
			if strings.IndexByte(text[w[0]:w[1]], '@') <= 0 {
				continue
			}
			for _, m := range emailRe.FindAllStringIndex(text[w[0]:w[1]], -1) {
				start, end := w[0]+m[0], w[0]+m[1]
				if strings.HasSuffix(text[:start], "://") {
					continue // user information of a link, judged as a link
				}
				f.add(start, end, "pii:email")
			}
		}
		if facts.spacedEmail {
			f.spacedEmails()
		}
		if facts.brackets && hasObfuscation(text, "at") {
			for _, m := range obfEmailRe.FindAllStringIndex(text, -1) {
				f.add(m[0], m[1], "pii:email")
			}
		}
	}
	digits := facts.digits
	if opt.IBAN && digits >= 10 {
		f.ibans()
	}
	if opt.NationalID || opt.Card {
		f.ids(facts, opt)
	}
	if (opt.Phone || opt.Card) && digits >= 7 {
		for _, w := range f.digitRuns() {
			f.numbersIn(w[0], w[1])
		}
	}
	if opt.Phone && spelled {
		f.spelledDigits()
	}
	return f.out
}

// digitRuns returns the runs of digits and separators with at least
// seven digits, found once per text.
func (f *piiFinder) digitRuns() [][2]int {
	if !f.runsDone {
		f.runs = windows(f.text, numberishSet, func(w string) bool { return countDigits(w) >= 7 })
		f.runsDone = true
	}
	return f.runs
}

func (f *piiFinder) add(start, end int, rule string) {
	for _, s := range f.out {
		if s.Category == CatPII && start >= s.Start && end <= s.End {
			return // inside a span already found (a phone inside an IBAN)
		}
	}
	f.out = append(f.out, ingest.Span{Start: start, End: end, Category: CatPII, Rule: rule})
}

func (f *piiFinder) covered(start, end int) bool {
	for _, s := range f.out {
		if s.Category == CatPII && start < s.End && end > s.Start {
			return true
		}
	}
	return false
}

// numberSep reports the characters that may part the digits of a number.
func numberSep(c byte) bool {
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/' || c == '_'
}

// numbersIn judges every number of the window text[from:to].
func (f *piiFinder) numbersIn(from, to int) {
	scanNumbers(f.text[from:to], func(s, e int) { f.number(from+s, from+e) })
}

// scanNumbers reports the numbers of w: what
// `(?:\+|\b)\d(?:[ \-.()/_]{0,2}\d){6,30}` finds in it (7 to 31 digits,
// at most two separator characters between two digits, starting at a
// word boundary or a "+"), found by a scan instead of the regular
// expression, which was a twentieth of a check. w holds only digits and
// separators (a digit run, see digitRuns).
func scanNumbers(w string, found func(s, e int)) {
	for p := 0; p < len(w); {
		s := p
		if w[s] == '+' && s+1 < len(w) && isDigit(w[s+1]) {
			p = s + 1
		} else if !isDigit(w[s]) || (s > 0 && isWordByte(w[s-1])) {
			p = s + 1
			continue
		}
		// p is the first digit: take digits while at most two separators
		// part them, up to 31 digits
		digits, end := 1, p+1
		for digits < 31 {
			k := end
			for k < len(w) && k-end < 2 && numberSep(w[k]) {
				k++
			}
			if k == len(w) || !isDigit(w[k]) {
				break
			}
			digits, end = digits+1, k+1
		}
		if digits < 7 {
			p = s + 1
			continue
		}
		found(s, end)
		p = end
	}
}

// number judges one digit run: a payment card (Luhn, known prefix), a
// phone number (international form, a phone's grouping, or a bare run
// after a phone word), or neither (order numbers, dates, tracking codes).
func (f *piiFinder) number(start, end int) {
	s := f.text[start:end]
	// the run may have swallowed a trailing separator
	s = strings.TrimRight(s, " -./(")
	end = start + len(s)
	if f.covered(start, end) {
		return
	}
	// a letter glued to either end means a code such as 1Z999AA1012345678
	if (start > 0 && isAlnum(f.text[start-1]) && f.text[start] != '+') || (end < len(f.text) && isAlpha(f.text[end])) || codeTail(f.text, end) {
		return
	}
	digits := make([]byte, 0, len(s))
	var groups []int
	n := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			digits = append(digits, c)
			n++
		} else if n > 0 {
			groups = append(groups, n)
			n = 0
		}
	}
	if n > 0 {
		groups = append(groups, n)
	}
	d := len(digits)
	ref := f.precededBy(start, refWords, 24)
	if f.opt.Card && len(groups) > 1 && groups[0] >= 13 && groups[0] <= 19 && !(d <= 19 && cardGroups(groups, d)) {
		// a card number the run glued to what follows it ("3485...028 09/26
		// 4821"): the first group is judged alone
		first := groups[0]
		if luhn(digits[:first]) && cardPrefix(digits[:first]) && !allSame(digits[:first]) &&
			(!ref || f.precededBy(start, cardWords, 40) || f.cardNear(start, end)) {
			f.add(start, start+firstDigits(s, first), "pii:card")
			return
		}
	}
	if f.opt.Card && d >= 13 && d <= 19 && cardGroups(groups, d) && !allSame(digits) {
		valid := luhn(digits) && cardPrefix(digits)
		// a number that fails the checksum is still a card between card
		// words, an expiry date and a CVV
		if (valid && (!ref || f.precededBy(start, cardWords, 40))) || f.cardNear(start, end) {
			f.add(start, end, "pii:card")
			return
		}
	}
	if !f.opt.Phone || d < 8 || d > 15 || ref || dateRe.MatchString(s) {
		return
	}
	plus := strings.HasPrefix(s, "+") || strings.HasPrefix(s, "00")
	paren := start > 0 && f.text[start-1] == '('
	switch {
	case plus && d >= 9:
	case d >= 9 && d <= 12 && len(groups) >= 2 && phoneGroups(groups, digits[0] == '0' || paren):
	case d >= 9 && d <= 13 && f.precededBy(start, phoneWords, 40):
	default:
		return
	}
	if paren {
		start--
	}
	f.add(start, end, "pii:phone")
}

// firstDigits returns the length of the prefix of s holding its first n
// digits.
func firstDigits(s string, n int) int {
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			if n--; n == 0 {
				return i + 1
			}
		}
	}
	return len(s)
}

// wordIndex is a list of context words ("order", "account no", "n°")
// indexed by their last byte, so a window is searched in one backward
// pass instead of a search per word.
type wordIndex struct {
	byLast [256][]string
}

func newWordIndex(words []string) *wordIndex {
	x := &wordIndex{}
	for _, w := range words {
		last := w[len(w)-1]
		x.byLast[last] = append(x.byLast[last], w)
	}
	return x
}

// endsIn reports whether one of the words occurs in the lower-cased
// window as a word of its own ("order" but not inside "borders"); "#"
// counts anywhere.
func (x *wordIndex) endsIn(before []byte) bool {
	for j := len(before) - 1; j >= 0; j-- {
		for _, w := range x.byLast[before[j]] {
			i := j + 1 - len(w)
			if i < 0 || string(before[i:j+1]) != w {
				continue
			}
			if w == "#" {
				return true
			}
			if (i > 0 && isAlpha(before[i-1])) || (j+1 < len(before) && isAlpha(before[j+1])) {
				continue
			}
			return true
		}
	}
	return false
}

// precededBy reports whether one of the words ends within window bytes
// before pos (as a word of its own).
func (f *piiFinder) precededBy(pos int, words *wordIndex, window int) bool {
	from := max(0, pos-window)
	// the window lower-cased in a stack buffer (windows are at most 40
	// bytes), so no copy of the whole text is made
	var buf [64]byte
	if pos-from <= len(buf) {
		b := buf[:pos-from]
		for i := range b {
			c := f.text[from+i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
		}
		return words.endsIn(b)
	}
	if f.lower == "" {
		f.lower = asciiLower(f.text)
	}
	return words.endsIn([]byte(f.lower[from:pos]))
}

// phoneGroups accepts groupings phones are written in: 3-3-4, 2-2-2-2-2,
// 4-3-4, (3) 3-4, 0xxxx xxxxxx, (2) 5-4 (a Brazilian mobile after its
// area code); long trunk groups need a leading 0 or a bracketed area code.
func phoneGroups(groups []int, trunk bool) bool {
	if digitByDigit(groups) {
		return true
	}
	for i, g := range groups {
		if g < 2 {
			return false
		}
		if trunk && i == 1 && g == 5 && groups[0] <= 3 && len(groups) == 3 && groups[2] == 4 {
			continue
		}
		if g > 4 && !(trunk && (i == 0 || i == len(groups)-1) && g <= 8) {
			return false
		}
	}
	return true
}

// cardGroups accepts one run of digits or the groupings cards are printed in.
func cardGroups(groups []int, d int) bool {
	if len(groups) == 1 || digitByDigit(groups) {
		return true
	}
	if d == 15 && len(groups) == 3 && groups[0] == 4 && groups[1] == 6 && groups[2] == 5 {
		return true // American Express
	}
	for i, g := range groups {
		if g != 4 && !(i == len(groups)-1 && g >= 1 && g <= 4) {
			return false
		}
	}
	return true
}

// digitByDigit reports digits written one by one with separators
// ("4 1 1 1 . . ."), a way to slip a number past filters.
func digitByDigit(groups []int) bool {
	for _, g := range groups {
		if g > 2 {
			return false
		}
	}
	return len(groups) >= 7
}

func cardPrefix(d []byte) bool {
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p4 := p2*100 + int(d[2]-'0')*10 + int(d[3]-'0')
	switch {
	case d[0] == '4': // Visa
		return true
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return true
	case p2 == 34 || p2 == 37: // American Express
		return len(d) == 15
	case p4 == 6011 || p2 == 65 || (p4 >= 6440 && p4 <= 6499) || p2 == 62: // Discover, UnionPay
		return true
	case p2 == 35 || p2 == 36 || p2 == 38 || p2 == 30: // JCB, Diners
		return true
	}
	return false
}

func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

func allSame(d []byte) bool {
	for _, c := range d {
		if c != d[0] {
			return false
		}
	}
	return true
}

// ibanLengths is the length of an IBAN by country (ISO 13616 registry).
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
	"BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
	"DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
	"GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
	"IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
	"LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
	"ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
	"PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
	"SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
	"TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

// ibans finds IBANs: a country code and check digits, then exactly the
// country's length of letters and digits (single spaces allowed), then a
// word boundary, and a valid mod-97 checksum.
func (f *piiFinder) ibans() {
	t := f.text
	for i := 0; i+4 <= len(t); i++ {
		// a country code and check digits at a word start, as
		// \b[a-zA-Z]{2}\d{2} would find them
		if !isAlpha(t[i]) || !isAlpha(t[i+1]) || !isDigit(t[i+2]) || !isDigit(t[i+3]) || (i > 0 && isWordByte(t[i-1])) {
			continue
		}
		m := [2]int{i, i + 4}
		cc := [2]byte{upper(t[i]), upper(t[i+1])}
		want, ok := ibanLengths[string(cc[:])]
		if !ok {
			continue
		}
		buf := make([]byte, 0, want)
		i := m[0]
		for i < len(f.text) && len(buf) < want {
			c := f.text[i]
			switch {
			case isAlnum(c):
				buf = append(buf, upper(c))
				i++
			case c == ' ' && i+1 < len(f.text) && isAlnum(f.text[i+1]) && len(buf) > 0:
				i++
			default:
				i = len(f.text) + 1
			}
		}
		if len(buf) != want || i > len(f.text) || (i < len(f.text) && isAlnum(f.text[i])) {
			continue
		}
		if ibanValid(buf) {
			f.add(m[0], i, "pii:iban")
		}
	}
}

func ibanValid(b []byte) bool {
	r := append(append([]byte{}, b[4:]...), b[:4]...)
	rem := 0
	for _, c := range r {
		switch {
		case c >= '0' && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			v := int(c-'A') + 10
			rem = (rem*100 + v) % 97
		default:
			return false
		}
	}
	return rem == 1
}

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isAlnum(c byte) bool { return isAlpha(c) || isDigit(c) }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isWordByte is what \b counts as a word character: ASCII letters, digits
// and '_'.
func isWordByte(c byte) bool { return isAlnum(c) || c == '_' }
func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 32
	}
	return c
}

// byteSet is a set of bytes, for the window scans.
type byteSet [256]bool

func newByteSet(in func(c byte) bool) *byteSet {
	var s byteSet
	for c := 0; c < 256; c++ {
		s[c] = in(byte(c))
	}
	return &s
}

var (
	notSpaceSet = newByteSet(func(c byte) bool {
		return c > ' ' && c != '<' && c != '>' && c != '"' && c != '\'' && c != '`'
	})
	numberishSet = newByteSet(func(c byte) bool {
		return (c >= '0' && c <= '9') || c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/' || c == '+' || c == '_'
	})
)

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

// appendWindows appends the maximal runs of bytes in set to out.
func appendWindows(out [][2]int, text string, in *byteSet) [][2]int {
	for i := 0; i < len(text); {
		if !in[text[i]] {
			i++
			continue
		}
		j := i
		for j < len(text) && in[text[j]] {
			j++
		}
		out = append(out, [2]int{i, j})
		i = j
	}
	return out
}

// windows returns the maximal runs of bytes in set that keep passes.
func windows(text string, in *byteSet, keep func(string) bool) [][2]int {
	var out [][2]int
	for i := 0; i < len(text); {
		if !in[text[i]] {
			i++
			continue
		}
		j := i
		for j < len(text) && in[text[j]] {
			j++
		}
		if keep(text[i:j]) {
			out = append(out, [2]int{i, j})
		}
		i = j
	}
	return out
}

// hasObfuscation reports whether text holds, in any case, a bracketed
// form of word or of its symbol ("[at]", "(DOT)", "[.]").
func hasObfuscation(text, word string) bool {
	sym := "@"
	if word == "dot" {
		sym = "."
	}
	for i := 0; i < len(text); i++ {
		if c := text[i]; c != '[' && c != '(' && c != '{' {
			continue
		}
		rest := text[i+1:]
		if strings.HasPrefix(rest, sym) || (len(rest) >= len(word) && strings.EqualFold(rest[:len(word)], word)) {
			return true
		}
	}
	return false
}

// asciiLower lower-cases ASCII letters only, so byte offsets stay those
// of the original text.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
