print("lb-demo-backend")
