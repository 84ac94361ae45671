module adstream/bench/openloop

go 1.21
