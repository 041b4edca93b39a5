// Package docker holds no code that runs in production: its tests check the Docker setup of
// the repository without a Docker engine. They read compose.yaml with compose-go and the
// Dockerfile with BuildKit's parser, run the Postgres init against a real Postgres and the Redis
// ACL file in a private redis-server, and start the three services built with the Dockerfile's
// flags, each connecting as its own database and Redis user.
//
// It is a module of its own so that compose-go and BuildKit stay out of the services' modules.
package docker
