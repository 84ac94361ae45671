-- One POST per request, spreading events over 1000 ads.
wrk.method = "POST"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/ads/AD" .. (n % 1000) .. "/impression")
end
