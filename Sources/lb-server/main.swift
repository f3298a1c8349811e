print("lb-server")
