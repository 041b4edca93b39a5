package server_test

import (
	"testing"

	"conferencego/httpedge/edgetest"
)

// openAPI is what api-attendee's document must show and refuse, against the fixture's app and server.
func openAPI(f fixture) edgetest.Service {
	return edgetest.Service{
		DocsShow: []string{"<h1>api-attendee", "/api/conferences/{id}/attendees/", "/internal/changes", "Requires the <code>Authorization</code> header", "application/problem+json", `id="schema-Problem"`},
		Refusals: []edgetest.Refusal{
			{Name: "a body missing required fields", Method: "GET", Path: "/api/attendees/1/", Answer: edgetest.JSON(200, `{"id": 1}`)},
			{Name: "an undocumented status", Method: "GET", Path: "/api/attendees/1/", Answer: edgetest.Problem(418)},
			{Name: "a 409 where none is documented", Method: "GET", Path: "/api/conferences/", Answer: edgetest.Problem(409)},
			{Name: "a 401 on a public route", Method: "GET", Path: "/api/attendees/", Answer: edgetest.Problem(401)},
			{Name: "an error that is not problem+json", Method: "GET", Path: "/api/attendees/1/", Answer: edgetest.JSON(404, `{"error": "no"}`)},
			{Name: "an unknown path that does not answer 404", Method: "GET", Path: "/api/nothing/", Answer: edgetest.JSON(200, `{}`)},
			{Name: "an unknown method that does not answer 405", Method: "PATCH", Path: "/api/attendees/1/", Answer: edgetest.Problem(404)},
			{Name: "a time that is not RFC 3339", Method: "GET", Path: "/internal/source", Answer: edgetest.JSON(200, `{"source":"s","bound_at":"yesterday"}`)},
		},
		Document: "openapi.json", App: f.app, Base: f.base,
	}
}

// TestOpenAPI holds api-attendee to its document; the check refuses what the document does not allow.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	edgetest.CheckService(t, openAPI(setup(t)))
}
