package proxy

import "testing"

func TestDropForwarding(t *testing.T) {
	for k, want := range map[string]bool{
		"Forwarded": true, "forwarded": true, "X-Real-Ip": true, "X_Real_IP": true, "x_real_ip": true,
		"X-Forwarded-For": true, "X_forwarded_for": true, "X-Forwarded-Port": true, "X-Forwarded-Prefix": true,
		"X-Forwarded-Ssl": true, "x-forwarded-anything": true,
		"": false, "X-Forwarded": false, "X-Forwarded-": false, "X-Request-Id": false, "Host": false,
		"Forwarded-For": false, "X-Real-Ip-Extra": false, "Accept": false, "Cookie": false, "Xforwardedfor": false,
	} {
		if got := dropForwarding(k); got != want {
			t.Errorf("dropForwarding(%q) = %t, want %t", k, got, want)
		}
	}
}
