package server_test

import (
	"testing"

	"conferencego/httpedge/edgetest"
)

// openAPI is what api-conference's document must show and refuse, against the fixture's app and server.
func openAPI(f fixture) edgetest.Service {
	return edgetest.Service{
		DocsShow: []string{"<h1>api-conference", "/api/conferences/{id}/presentations/", "/api/conferences/changes/", "application/problem+json", `id="schema-Problem"`},
		Refusals: []edgetest.Refusal{
			{Name: "a body missing required fields", Method: "GET", Path: "/api/locations/1/", Answer: edgetest.JSON(200, `{"id": 1}`)},
			{Name: "an undocumented status", Method: "GET", Path: "/api/locations/1/", Answer: edgetest.Problem(418)},
			{Name: "a 409 where none is documented", Method: "GET", Path: "/api/states", Answer: edgetest.Problem(409)},
			{Name: "an error that is not problem+json", Method: "GET", Path: "/api/locations/1/", Answer: edgetest.JSON(404, `{"error": "no"}`)},
			{Name: "an unknown path that does not answer 404", Method: "GET", Path: "/api/nothing/", Answer: edgetest.JSON(200, `{}`)},
			{Name: "an unknown method that does not answer 405", Method: "PATCH", Path: "/api/locations/1/", Answer: edgetest.Problem(404)},
			{Name: "a time that is not RFC 3339", Method: "GET", Path: "/api/conferences/changes/", Answer: edgetest.JSON(200,
				`{"source":"s","next":"1","more":false,"changes":[{"event_id":"e","type":"conference.deleted","conference_id":1,"version":2,"occurred_at":"yesterday","data":null}]}`)},
		},
		Document: "openapi.json", App: f.app, Base: f.base,
	}
}

// TestOpenAPI holds api-conference to its document; the check refuses what the document does not allow.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	edgetest.CheckService(t, openAPI(setup(t)))
}
