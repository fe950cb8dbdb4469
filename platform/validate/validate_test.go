package validate

import (
	"strings"
	"testing"

	"github.com/openhavip/havip/platform/apierr"
)

func TestName(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  string // reason, "" when the name is accepted
	}{
		{"plain", "web-vip", ""},
		{"spaces inside", "web vip 1", ""},
		{"chinese", "高可用虚拟IP", ""},
		{"persian with zero-width non-joiner", "می\u200cخواهم", ""},
		{"devanagari with zero-width joiner", "क्\u200dष", ""},
		{"emoji sequence with zero-width joiner", "ops \U0001F469\u200D\U0001F4BB", ""},
		{"no-break space inside", "a\u00a0b", ""},
		{"exactly 60 characters", strings.Repeat("é", MaxNameLen), ""},

		{"empty", "", apierr.ReasonEmpty},
		{"blank", "  \t", apierr.ReasonEmpty},
		{"only ideographic space", "\u3000", apierr.ReasonEmpty},
		{"only zero-width joiner", "\u200d", apierr.ReasonEmpty},
		{"61 characters", strings.Repeat("a", MaxNameLen+1), apierr.ReasonTooLong},
		{"invalid UTF-8", "a\xffb", apierr.ReasonMalformed},

		{"NUL", "a\x00b", apierr.ReasonMalformed},
		{"newline", "a\nb", apierr.ReasonMalformed},
		{"escape", "a\x1b[31mb", apierr.ReasonMalformed},
		{"DEL", "a\x7fb", apierr.ReasonMalformed},
		{"C1 next line U+0085", "a\u0085b", apierr.ReasonMalformed},
		{"C1 CSI U+009B", "a\u009b31mb", apierr.ReasonMalformed},
		{"line separator U+2028", "a\u2028b", apierr.ReasonMalformed},
		{"paragraph separator U+2029", "a\u2029b", apierr.ReasonMalformed},
		{"left-to-right embedding U+202A", "a\u202ab", apierr.ReasonMalformed},
		{"right-to-left override U+202E", "vip\u202egnp.exe", apierr.ReasonMalformed},
		{"left-to-right isolate U+2066", "a\u2066b", apierr.ReasonMalformed},
		{"pop directional isolate U+2069", "a\u2069b", apierr.ReasonMalformed},
		{"left-to-right mark U+200E", "a\u200eb", apierr.ReasonMalformed},
		{"right-to-left mark U+200F", "a\u200fb", apierr.ReasonMalformed},
		{"arabic letter mark U+061C", "a\u061cb", apierr.ReasonMalformed},
		{"byte order mark U+FEFF", "\ufeffvip", apierr.ReasonMalformed},
		{"zero-width space U+200B", "a\u200bb", apierr.ReasonMalformed},
		{"word joiner U+2060", "a\u2060b", apierr.ReasonMalformed},
		{"soft hyphen U+00AD", "a\u00adb", apierr.ReasonMalformed},
		{"interlinear annotation U+FFF9", "a\ufff9b", apierr.ReasonMalformed},
		{"tag character U+E0041", "a\U000E0041b", apierr.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := apierr.Reason(Name("havip_name", tt.value)); got != tt.want {
				t.Errorf("Name(%+q) reason = %q, want %q", tt.value, got, tt.want)
			}
		})
	}
}

func TestOptionalName(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  string
	}{
		{"empty", "", ""},
		{"plain", "eth0", ""},
		{"C1 next line U+0085", "eth\u00850", apierr.ReasonMalformed},
		{"line separator U+2028", "eth0\u2028", apierr.ReasonMalformed},
		{"right-to-left override U+202E", "\u202eeth0", apierr.ReasonMalformed},
		{"byte order mark U+FEFF", "eth0\ufeff", apierr.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := apierr.Reason(OptionalName("address_name", tt.value)); got != tt.want {
				t.Errorf("OptionalName(%+q) reason = %q, want %q", tt.value, got, tt.want)
			}
		})
	}
}
