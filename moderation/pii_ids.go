package moderation

import (
	"regexp"
	"strings"
)

// National identity numbers, card security data and digits spelled out
// as words. Each number is checked by its own check digits where it has
// them; numbers without a checksum (or whose shape is common, such as
// nine plain digits) count only after a word that names them.

var (
	// US SSN 123-45-6789 / 123 45 6789; Brazilian CPF 123.456.789-09;
	// Spanish DNI 12345678Z and NIE X1234567L; French NIR
	// 1 85 05 78 006 084 (36); German tax id, 11 digits.
	ssnRe = regexp.MustCompile(`\b\d{3}[- ]\d{2}[- ]\d{4}\b`)
	cpfRe = regexp.MustCompile(`\b\d{3}\.?\d{3}\.?\d{3}[-.]?\d{2}\b`)
	dniRe = regexp.MustCompile(`(?i)\b(?:[xyz][- ]?\d{7}|\d{8})[- ]?[a-z]\b`)
	// German identity card number: nine characters and a check digit
	ausweisRe = regexp.MustCompile(`(?i)\b[cfghjklmnprtvwxyz][cfghjklmnprtvwxyz0-9]{8}\d\b`)
	// "robert . fenwick @ gmail . com", "dan dot whitaker at outlook dot com"
	// "robert . fenwick @ gmail . com", "dan dot whitaker at outlook dot
	// com" and the same with the words of es/pt/de/fr ("punto", "ponto",
	// "punkt", "point"; "arroba", "arobase")
	spacedEmailRe = regexp.MustCompile(`(?i)\b[a-z0-9]+(?:\s*(?:\.|\b(?:dot|punto|ponto|punkt|point)\b|_|-)\s*[a-z0-9]+)*\s*(?:@|\b(?:at|arroba|arobase|arrobase)\b)\s*[a-z0-9-]+(?:\s*(?:\.|\b(?:dot|punto|ponto|punkt|point)\b)\s*[a-z]{2,6})+\b`)
	nirRe         = regexp.MustCompile(`(?i)\b[12][ .]?\d{2}[ .]?(?:0[1-9]|1[0-2]|[2-9]\d)[ .]?(?:\d{2}|2a|2b)[ .]?\d{3}[ .]?\d{3}(?:[ .]?\d{2})?\b`)
	// a run of 9 to 11 digits, possibly grouped, judged by context
	idDigitsRe = regexp.MustCompile(`\b\d(?:[ .\-]?\d){8,10}\b`)
	// "exp 09/27", "expiry: 9/2027", "valid thru 09-27"
	expiryRe = regexp.MustCompile(`(?i)\b(?:exp(?:iry|ires|iration)?(?:\s+date)?|valid\s+(?:thru|through|until)|gultig\s+bis|g\x{00fc}ltig\s+bis|vence|vencimento|caducidad|validade|expire|date\s+d'expiration)\W{0,3}(?:0?[1-9]|1[0-2])\s?[/\-.]\s?(?:\d{2}|20\d{2})\b`)
	cvvRe    = regexp.MustCompile(`(?i)\b(?:cvv2?|cvc2?|csc|cid|security\s+code|code\s+de\s+s[eé]curit[eé]|c[oó]digo\s+de\s+seguran[cç]a|c[oó]digo\s+de\s+seguridad|pr[uü]fnummer|kartenpr[uü]fnummer)\W{0,4}(\d{3,4})\b`)
	// a bare expiry date right after a card number: "4111... 09/27 123"
	bareExpiryRe = regexp.MustCompile(`^\W{0,3}(?:0[1-9]|1[0-2])\s?/\s?(?:\d{2}|20\d{2})\b`)
)

// Words that name an identity number.
var idWords = newWordIndex([]string{
	"ssn", "social security", "social security number", "tax id", "tin", "national id", "id number", "identity number",
	"passport", "driver's license", "drivers license", "licence number", "license number",
	"dni", "nie", "nif", "cif", "documento", "cedula", "numero de identidad", "seguridad social",
	"cpf", "rg", "contribuinte", "cartao de cidadao", "cc n", "bi n", "numero fiscal", "identificacao fiscal",
	"steuer-id", "steuerid", "steuer id", "steueridentifikationsnummer", "steuernummer", "idnr", "personalausweis",
	"ausweisnummer", "ausweis", "sozialversicherungsnummer", "rentenversicherungsnummer", "versicherungsnummer",
	"securite sociale", "sécurité sociale", "numero de secu", "numéro de sécu", "nir", "insee", "carte vitale",
	"carte d'identite", "carte d'identité", "numero fiscal", "numéro fiscal",
})

// Words that mark a card number even when it fails the Luhn check.
var cardWords = newWordIndex([]string{"card", "visa", "mastercard", "amex", "tarjeta", "karte", "kreditkarte", "carte", "cartao", "cartão", "credit", "debit"})

// ids finds national identity numbers and card security data.
func (f *piiFinder) ids(facts textFacts, opt PIIOptions) {
	digits := facts.digits
	t := f.text
	if opt.NationalID && digits >= 7 {
		// the number patterns run only on the digit runs of the text, each
		// widened by a few bytes for the letters DNI/NIE numbers carry
		for _, w := range f.digitRuns() {
			from, to := max(0, w[0]-2), min(len(t), w[1]+2)
			for from > 0 && !utf8RuneStart(t[from]) {
				from--
			}
			for to < len(t) && !utf8RuneStart(t[to]) {
				to++
			}
			f.idsIn(from, to)
		}
	}
	if opt.NationalID && digits >= 2 {
		f.ausweise()
	}
	if opt.Card && digits >= 3 && facts.slashDigit {
		for _, m := range expiryRe.FindAllStringIndex(t, -1) {
			f.add(m[0], m[1], "pii:card-expiry")
		}
	}
	if opt.Card && digits >= 3 && facts.cvvWord {
		for _, m := range cvvRe.FindAllStringSubmatchIndex(t, -1) {
			f.add(m[0], m[1], "pii:card-cvv")
		}
	}
}

// idsIn looks for identity numbers in t[from:to].
func (f *piiFinder) idsIn(from, to int) {
	t := f.text
	w := t[from:to]
	d := countDigits(w)
	if d < 9 {
		goto dni
	}
	for _, m := range ssnMatches(w) {
		s, e := from+m[0], from+m[1]
		if ssnValid(t[s:e]) && !f.precededBy(s, refWords, 24) && !codeTail(t, e) {
			f.add(s, e, "pii:ssn")
		}
	}
	for _, m := range cpfMatches(w, d) {
		s, e := from+m[0], from+m[1]
		formatted := strings.ContainsAny(t[s:e], ".-")
		if cpfValid(onlyDigits(t[s:e])) && (formatted || f.precededBy(s, idWords, 30)) {
			f.add(s, e, "pii:national-id")
		}
	}
	for _, m := range nirMatches(w, d) {
		s, e := from+m[0], from+m[1]
		d := strings.ToUpper(spaceDot.Replace(t[s:e]))
		if (len(d) == 15 && nirValid(d)) || f.precededBy(s, idWords, 40) {
			f.add(s, e, "pii:national-id")
		}
	}
	for _, m := range idDigitMatches(w) {
		s, e := from+m[0], from+m[1]
		// the whole digit run, not the start of a longer number
		if n := len(onlyDigits(t[s:e])); (n != 9 && n != 11) || moreDigitsAround(t, s, e) {
			continue
		}
		if f.precededBy(s, idWords, 40) {
			// SSN, NIF, Steuer-ID and the like after a word naming them
			f.add(s, e, "pii:national-id")
		}
	}
dni:
	// a DNI or NIE has a letter at one end of its digits
	if !hasLetter(w) {
		return
	}
	for _, m := range dniRe.FindAllStringIndex(w, -1) {
		s, e := from+m[0], from+m[1]
		if dniValid(t[s:e]) {
			f.add(s, e, "pii:national-id")
		}
	}
}

// The number patterns run only when the window holds enough digits for
// them (a range over FindAllStringIndex runs the search before the loop's
// first test).
// ssnMatches runs the SSN pattern when the window has its shape: groups
// of 3, 2 and 4 digits parted by one "-" or " ".
func ssnMatches(w string) [][]int {
	var g [3]int // the last three digit groups, and whether one separator parts them
	var sep [2]bool
	n, run := 0, 0
	for i := 0; i <= len(w); i++ {
		if i < len(w) && isDigit(w[i]) {
			run++
			continue
		}
		if run > 0 {
			g[0], g[1], g[2] = g[1], g[2], run
			sep[0] = sep[1]
			n++
			run = 0
			if n >= 3 && g[0] == 3 && g[1] == 2 && g[2] == 4 && sep[0] && sep[1] {
				return ssnRe.FindAllStringIndex(w, -1)
			}
		}
		// one separator between two groups
		sep[1] = i < len(w) && (w[i] == '-' || w[i] == ' ') && i+1 < len(w) && isDigit(w[i+1]) && i > 0 && isDigit(w[i-1])
	}
	return nil
}

// idDigitMatches runs the pattern of a bare 9 to 11 digit number when the
// window has at least nine digits parted by at most one " ", "." or "-"
// each.
func idDigitMatches(w string) [][]int {
	chain := 0
	for i := 0; i < len(w); i++ {
		switch {
		case isDigit(w[i]):
			chain++
			if chain >= 9 {
				return idDigitsRe.FindAllStringIndex(w, -1)
			}
		case (w[i] == ' ' || w[i] == '.' || w[i] == '-') && i > 0 && isDigit(w[i-1]) && i+1 < len(w) && isDigit(w[i+1]):
		default:
			chain = 0
		}
	}
	return nil
}

func cpfMatches(w string, digits int) [][]int {
	if digits < 11 {
		return nil
	}
	return cpfRe.FindAllStringIndex(w, -1)
}

func nirMatches(w string, digits int) [][]int {
	if digits < 13 {
		return nil
	}
	return nirRe.FindAllStringIndex(w, -1)
}

var (
	spaceDot  = strings.NewReplacer(" ", "", ".", "")
	spaceDash = strings.NewReplacer(" ", "", "-", "")
)

// ausweise finds German identity card numbers after a word naming them:
// words of ten letters and digits with a valid check digit.
func (f *piiFinder) ausweise() {
	t := f.text
	for i := 0; i < len(t); {
		if !isAlnum(t[i]) {
			i++
			continue
		}
		j := i
		for j < len(t) && isAlnum(t[j]) {
			j++
		}
		// ten letters and digits ending in the check digit (most ten-letter
		// words end in a letter), as a word of its own
		if j-i == 10 && isDigit(t[j-1]) && (i == 0 || !isWordByte(t[i-1])) && (j == len(t) || !isWordByte(t[j])) {
			if w := strings.ToUpper(t[i:j]); ausweisRe.MatchString(w) && ausweisValid(w) && f.precededBy(i, idWords, 40) {
				f.add(i, j, "pii:national-id")
			}
		}
		i = j
	}
}

func hasLetter(s string) bool {
	for i := 0; i < len(s); i++ {
		if isAlpha(s[i]) {
			return true
		}
	}
	return false
}

// cardNear reports whether an expiry date or a CVV is near a digit run,
// which makes a 13-19 digit run a card number even when a typo (or a
// made-up example) breaks its checksum.
func (f *piiFinder) cardNear(start, end int) bool {
	after := f.text[end:min(len(f.text), end+40)]
	before := f.text[max(0, start-40):start]
	return expiryRe.MatchString(after) || cvvRe.MatchString(after) || bareExpiryRe.MatchString(after) ||
		expiryRe.MatchString(before) || cvvRe.MatchString(before)
}

func onlyDigits(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// ssnValid applies the SSA's rules: no area 000, 666 or 9xx, no group
// 00, no serial 0000.
func ssnValid(s string) bool {
	d := onlyDigits(s)
	if len(d) != 9 {
		return false
	}
	area, group, serial := d[:3], d[3:5], d[5:]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

// cpfValid checks a Brazilian CPF's two check digits.
func cpfValid(d string) bool {
	if len(d) != 11 || allSame([]byte(d)) {
		return false
	}
	for n := 9; n <= 10; n++ {
		sum := 0
		for i := 0; i < n; i++ {
			sum += int(d[i]-'0') * (n + 1 - i)
		}
		check := sum * 10 % 11 % 10
		if check != int(d[n]-'0') {
			return false
		}
	}
	return true
}

// dniValid checks the control letter of a Spanish DNI or NIE.
func dniValid(s string) bool {
	s = strings.ToUpper(strings.NewReplacer(" ", "", "-", "").Replace(s))
	if len(s) != 9 {
		return false
	}
	num := s[:8]
	switch num[0] {
	case 'X':
		num = "0" + num[1:]
	case 'Y':
		num = "1" + num[1:]
	case 'Z':
		num = "2" + num[1:]
	}
	n := 0
	for i := 0; i < len(num); i++ {
		if !isDigit(num[i]) {
			return false
		}
		n = n*10 + int(num[i]-'0')
	}
	return "TRWAGMYFPDXBNJZSQVHLCKE"[n%23] == s[8]
}

// nirValid checks the key of a French social security number (15
// characters; Corsica's 2A and 2B count as 19 and 18).
func nirValid(d string) bool {
	body := d[:13]
	body = strings.Replace(strings.Replace(body, "2A", "19", 1), "2B", "18", 1)
	n := 0
	for i := 0; i < len(body); i++ {
		if !isDigit(body[i]) {
			return false
		}
		n = (n*10 + int(body[i]-'0')) % 97
	}
	key := 0
	for i := 13; i < 15; i++ {
		if !isDigit(d[i]) {
			return false
		}
		key = key*10 + int(d[i]-'0')
	}
	return 97-n == key
}

// Number words of the five languages, read as digits when at least
// seven digits follow one another ("my number is zero seven seven...").
var numberWords = map[string]byte{
	"zero": '0', "oh": '0', "one": '1', "two": '2', "three": '3', "four": '4', "five": '5', "six": '6', "seven": '7', "eight": '8', "nine": '9',
	"cero": '0', "uno": '1', "dos": '2', "tres": '3', "cuatro": '4', "cinco": '5', "seis": '6', "siete": '7', "ocho": '8', "nueve": '9',
	"um": '1', "dois": '2', "três": '3', "quatro": '4', "meia": '6', "sete": '7', "oito": '8', "nove": '9',
	"null": '0', "eins": '1', "zwei": '2', "drei": '3', "vier": '4', "fünf": '5', "funf": '5', "sechs": '6', "sieben": '7', "acht": '8', "neun": '9',
	"zéro": '0', "un": '1', "deux": '2', "trois": '3', "quatre": '4', "cinq": '5', "sept": '7', "huit": '8', "neuf": '9',
}

// Words that may stand between spelled digits without ending the number.
var numberGlue = map[string]bool{"dash": true, "and": true, "y": true, "e": true, "und": true, "et": true, "then": true, "point": true, "dot": true}

// spelledDigits finds runs of at least seven digits written as words,
// alone or mixed with numerals ("oh seven seven 00 nine one two...").
func (f *piiFinder) spelledDigits() {
	t := f.text
	if f.lower == "" {
		f.lower = asciiLower(t)
	}
	low := f.lower
	runStart, runEnd, count, words := -1, -1, 0, 0
	flush := func() {
		if count >= 7 && words >= 3 {
			f.add(runStart, runEnd, "pii:spelled-number")
		}
		runStart, count, words = -1, 0, 0
	}
	for i := 0; i < len(low); {
		c := low[i]
		if !isAlnum(c) && c < 0x80 {
			i++
			continue
		}
		j := i
		for j < len(low) && (isAlnum(low[j]) || low[j] >= 0x80) {
			j++
		}
		w := low[i:j]
		switch _, ok := numberWords[w]; {
		case ok:
			if runStart < 0 {
				runStart = i
			}
			runEnd, count, words = j, count+1, words+1
		case isAllDigits(w) && len(w) <= 4 && runStart >= 0:
			runEnd, count = j, count+len(w)
		case isAllDigits(w) && len(w) <= 4:
			runStart, runEnd, count = i, j, len(w)
		case numberGlue[w] && runStart >= 0:
		default:
			flush()
		}
		i = j
	}
	flush()
}

func isAllDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// ausweisValid checks a German identity card number: weights 7, 3, 1
// over the digits and letters (A = 10 ... Z = 35), mod 10.
func ausweisValid(s string) bool {
	if len(s) != 10 {
		return false
	}
	sum := 0
	for i := 0; i < 9; i++ {
		c := s[i]
		v := 0
		switch {
		case isDigit(c):
			v = int(c - '0')
		case c >= 'A' && c <= 'Z':
			v = int(c-'A') + 10
		default:
			return false
		}
		sum += v * []int{7, 3, 1}[i%3]
	}
	return sum%10 == int(s[9]-'0')
}

// codeTail reports a number glued by a dash or slash to letters or
// digits after it ("800-417-2290-B", "612-34-5678-A"): a part or product
// code, not personal data.
func codeTail(t string, end int) bool {
	return end+1 < len(t) && (t[end] == '-' || t[end] == '/') && isAlnum(t[end+1])
}

// spacedEmails finds e-mail addresses written with spaces or words for
// the symbols. The address must end in a known mail domain suffix so
// that "meet at home dot" prose is not taken for one.
func (f *piiFinder) spacedEmails() {
	for _, m := range spacedEmailRe.FindAllStringIndex(f.text, -1) {
		s := strings.ToLower(f.text[m[0]:m[1]])
		// without "@", both the at and the dot must be spelled as words:
		// "anna punkt schmidt at gmx punkt de", not "meet at 5.30"
		if !strings.Contains(s, "@") && (!containsWord(s, emailAtWords) || !containsWord(s, emailDotWords)) {
			continue
		}
		tail := s[strings.LastIndexAny(s, ". ")+1:]
		switch tail {
		case "com", "net", "org", "de", "fr", "es", "pt", "br", "uk", "io", "eu", "info", "me", "co":
			f.add(m[0], m[1], "pii:email")
		}
	}
}

// The words that spell "@" and "." in an e-mail address, per language.
var (
	emailAtWords  = []string{"at", "arroba", "arobase", "arrobase"}
	emailDotWords = []string{"dot", "punto", "ponto", "punkt", "point"}
)

// containsWord reports whether one of words is a word of the lower-case s.
func containsWord(s string, words []string) bool {
	for _, w := range words {
		for i := 0; ; {
			j := strings.Index(s[i:], w)
			if j < 0 {
				break
			}
			j += i
			if (j == 0 || !isAlnum(s[j-1])) && (j+len(w) == len(s) || !isAlnum(s[j+len(w)])) {
				return true
			}
			i = j + 1
		}
	}
	return false
}

// moreDigitsAround reports a digit one separator away from [s, e): the
// match is part of a longer number ("+44 7700 900123").
func moreDigitsAround(t string, s, e int) bool {
	if e+1 < len(t) && (t[e] == ' ' || t[e] == '.' || t[e] == '-') && isDigit(t[e+1]) {
		return true
	}
	return s >= 2 && (t[s-1] == ' ' || t[s-1] == '.' || t[s-1] == '-' || t[s-1] == '+') && isDigit(t[s-2])
}
