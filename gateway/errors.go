package gateway

import (
	"encoding/json"
	"net/http"

	silo "github.com/silo-run/silo"
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    silo.Code `json:"code"`
	Message string    `json:"message"`
}

// fail writes a JSON error with the status of code and returns the number of
// body bytes written. msg must be safe to show to anyone.
func (g *Gateway) fail(w http.ResponseWriter, code silo.Code, msg string) int {
	b, _ := json.Marshal(errorBody{Error: errorDetail{Code: code, Message: msg}})
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(Status(code))
	n, _ := w.Write(b)
	return n
}
