print("nommu")
