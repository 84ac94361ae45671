-- One POST per request, spreading events over 1000 ads. The 1000 requests are formatted
-- once in init(): request() only picks the next, so wrk spends little CPU per request.
wrk.method = "POST"
local requests = {}
local n = 0
init = function(args)
  for i = 0, 999 do
    requests[i + 1] = wrk.format(nil, "/ads/AD" .. i .. "/impression")
  end
end
request = function()
  n = n % 1000 + 1
  return requests[n]
end
