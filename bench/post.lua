-- A plain POST: no Lua code runs per request.
wrk.method = "POST"
