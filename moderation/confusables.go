package moderation

// confusables maps letters that look like Latin letters to the Latin letter
// they imitate. It is applied after NFKC, case folding and the removal of
// combining marks, so it only needs lower-case, unaccented forms. NFKC
// already maps fullwidth forms, mathematical alphanumerics, circled and
// parenthesised letters and superscripts; this table covers what NFKC
// leaves alone: Cyrillic, Greek, small capitals, IPA and a few Latin
// letters whose stroke is not a combining mark.
var confusables = map[rune]rune{
	// Cyrillic
	'а': 'a', 'в': 'b', 'с': 'c', 'ԁ': 'd', 'е': 'e', 'ё': 'e', 'һ': 'h',
	'і': 'i', 'ї': 'i', 'ј': 'j', 'к': 'k', 'ӏ': 'l', 'м': 'm', 'н': 'h',
	'о': 'o', 'р': 'p', 'ԛ': 'q', 'г': 'r', 'ѕ': 's', 'т': 't', 'у': 'y',
	'ү': 'y', 'ԝ': 'w', 'х': 'x', 'ь': 'b', 'ъ': 'b', 'ц': 'u', 'п': 'n',
	'ɡ': 'g', 'ѵ': 'v', 'ո': 'n', 'ս': 'u', 'օ': 'o', 'զ': 'q',
	// Greek
	'α': 'a', 'β': 'b', 'ϲ': 'c', 'δ': 'd', 'ε': 'e', 'η': 'n', 'ι': 'i',
	'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't', 'υ': 'u', 'χ': 'x',
	'ω': 'w', 'ς': 's', 'γ': 'y', 'μ': 'u', 'ϳ': 'j', 'ϻ': 'm',
	// Latin small capitals and IPA letters
	'ᴀ': 'a', 'ʙ': 'b', 'ᴄ': 'c', 'ᴅ': 'd', 'ᴇ': 'e', 'ꜰ': 'f', 'ɢ': 'g',
	'ʜ': 'h', 'ɪ': 'i', 'ᴊ': 'j', 'ᴋ': 'k', 'ʟ': 'l', 'ᴍ': 'm', 'ɴ': 'n',
	'ᴏ': 'o', 'ᴘ': 'p', 'ǫ': 'q', 'ʀ': 'r', 'ꜱ': 's', 'ᴛ': 't', 'ᴜ': 'u',
	'ᴠ': 'v', 'ᴡ': 'w', 'ʏ': 'y', 'ᴢ': 'z', 'ɑ': 'a', 'ɩ': 'i', 'ʋ': 'u',
	'ɒ': 'a', 'ə': 'e', 'ɛ': 'e', 'ɔ': 'c', 'ʃ': 's',
	// Latin letters with strokes or hooks that NFD does not decompose
	'ł': 'l', 'ø': 'o', 'đ': 'd', 'ħ': 'h', 'ŧ': 't', 'ƀ': 'b', 'ɨ': 'i',
	'ı': 'i', 'ȷ': 'j', 'ƒ': 'f', 'ʉ': 'u', 'ɍ': 'r', 'ȼ': 'c', 'ɇ': 'e',
	'æ': 'a', 'œ': 'o', 'þ': 'p', 'ð': 'd',
}

// upperConfusables maps capitals that imitate a Latin capital whose
// lower case looks different (Greek Η is "H" but η reads "n"). They are
// mapped before case folding.
var upperConfusables = map[rune]rune{
	'Η': 'h', 'Μ': 'm', 'Ν': 'n', 'Υ': 'y', 'Ζ': 'z', 'Ι': 'i', 'Κ': 'k', 'Β': 'b', 'Ρ': 'p', 'Χ': 'x',
	'Τ': 't', 'Α': 'a', 'Ε': 'e', 'Ο': 'o',
	'Н': 'h', 'М': 'm', 'Т': 't', 'В': 'b', 'К': 'k', 'Р': 'p', 'С': 'c', 'Х': 'x', 'У': 'y',
	'А': 'a', 'Е': 'e', 'О': 'o', 'Ѕ': 's', 'І': 'i', 'Ј': 'j', 'Ԛ': 'q', 'Ԝ': 'w',
}

// regionalIndicatorBase is U+1F1E6 REGIONAL INDICATOR SYMBOL LETTER A;
// the 26 symbols from it spell letters (🇫🇺🇨🇰).
const regionalIndicatorBase = 0x1F1E6

// leet maps a character used in place of letters to the letters it can
// stand for. Digits keep themselves as a further candidate so that terms
// with digits still match.
var leet = map[rune][3]rune{
	'0': {'o', '0'},
	'1': {'i', 'l', '1'},
	'3': {'e', '3'},
	'4': {'a', '4'},
	'5': {'s', '5'},
	'7': {'t', '7'},
	'8': {'b', '8'},
	'9': {'g', '9'},
	'@': {'a'},
	'$': {'s'},
	'!': {'i'},
	'|': {'l', 'i'},
	'+': {'t'},
	'(': {'c'},
	'€': {'e'},
	'¢': {'c'},
	'£': {'l'},
	'¥': {'y'},
	'¡': {'i'},
}
