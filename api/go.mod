module kplex.dev/api

go 1.26.0
