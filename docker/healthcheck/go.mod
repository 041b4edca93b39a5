module conferencego/docker/healthcheck

go 1.26.8
