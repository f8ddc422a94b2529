package control

import "encoding/json"

func jsonDetail(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
