module conferencego/web

go 1.26.8
